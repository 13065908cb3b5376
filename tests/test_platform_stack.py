"""The platform stack's resource graph under Pulumi mocks, the Automation API runner and the
``gpuctl platform`` CLI. No Pulumi CLI is needed (none is installed offline); ``up`` is
checked to fail with the one-line install hint.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provision.cli.platform import platform
from provision.errors import ExecutionError
from provision.execute import pulumi_stack as ps
from provision.plan.load import load_and_plan
from provision.platform.config import stack_config, stack_file
from provision.platform.model import BLOCK_LABEL, HOSTNAME_LABEL, RACK_LABEL, PlatformConfig
from tests.conftest import EXAMPLE_SITES, SITES

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_PATCH = "kubernetes:core/v1:NodePatch"


@cache
def config_of(site: str) -> PlatformConfig:
    return stack_config(load_and_plan(SITES / site)[1])


@cache
def resources_of(site: str) -> tuple[ps.RecordedResource, ...]:
    return tuple(ps.collect_resources(config_of(site)))


def by_type(site: str) -> dict[str, list[ps.RecordedResource]]:
    out: dict[str, list[ps.RecordedResource]] = defaultdict(list)
    for r in resources_of(site):
        out[r.type].append(r)
    return out


def release(site: str, name: str) -> dict[str, Any]:
    [r] = [r for r in by_type(site)[RELEASE] if r.name == name]
    return r.inputs


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_resource_graph_shape(site: str) -> None:
    cfg = config_of(site)
    counts = Counter(r.type for r in resources_of(site))
    assert counts["gpuctl:platform:GpuPlatform"] == 1
    assert counts["kubernetes:core/v1:Namespace"] == len(cfg.namespaces)
    assert counts[RELEASE] == 3
    assert counts["kubernetes:yaml/v2:ConfigFile"] == 1
    assert counts["kubernetes:kueue.x-k8s.io/v1beta2:Topology"] == 1
    assert counts["kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor"] == len(cfg.kueue.flavors)
    assert counts["kubernetes:monitoring.coreos.com/v1:PrometheusRule"] == 1
    assert counts[NODE_PATCH] == len(cfg.nodes)
    names = [(r.type, r.name) for r in resources_of(site)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_charts_pinned_with_values_from_the_site(site: str) -> None:
    cfg = config_of(site)
    gpu = release(site, "gpu-operator")
    assert (gpu["chart"], gpu["version"]) == ("gpu-operator", "v25.10.1")
    assert gpu["repositoryOpts"]["repo"] == "https://helm.ngc.nvidia.com/nvidia"
    assert gpu["namespace"] == "gpu-operator"
    assert gpu["values"]["driver"]["enabled"] is False
    assert gpu["values"]["toolkit"]["enabled"] is False
    assert gpu["values"]["dcgmExporter"]["enabled"] is True
    net = release(site, "network-operator")
    assert (net["chart"], net["version"]) == ("network-operator", "25.10.0")
    rdma = net["values"]["rdmaSharedDevicePlugin"]
    rails = len(cfg.network_operator.rdma_resources)
    assert rails == load_and_plan(SITES / site)[1].rails
    assert [r["name"] for r in rdma["resources"]] == [f"rail{i}" for i in range(rails)]
    assert [r["ifNames"] for r in rdma["resources"]] == [[f"ib{i}"] for i in range(rails)]
    assert net["values"]["ofedDriver"]["deploy"] is False
    kueue = release(site, "kueue")
    assert (kueue["chart"], kueue["version"]) == ("oci://registry.k8s.io/kueue/charts/kueue",
                                                  "0.18.8")
    [mpi] = by_type(site)["kubernetes:yaml/v2:ConfigFile"]
    assert "/mpi-operator/v0.7.0/" in mpi.inputs["file"]


def test_driver_in_operator_turns_driver_and_toolkit_on() -> None:
    cfg = stack_config(load_and_plan(SITES / "lab")[1], host_installs_driver=False)
    [gpu] = [r for r in ps.collect_resources(cfg) if r.name == "gpu-operator"]
    assert gpu.inputs["values"]["driver"]["enabled"] is True
    assert gpu.inputs["values"]["driver"]["version"] == "580.95.05"
    assert gpu.inputs["values"]["toolkit"]["enabled"] is True


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_node_is_labelled_and_tainted(site: str) -> None:
    cfg = config_of(site)
    patches = {r.inputs["metadata"]["name"]: r.inputs for r in by_type(site)[NODE_PATCH]}
    assert sorted(patches) == sorted(n.name for n in cfg.nodes)
    for n in cfg.nodes:
        inputs = patches[n.name]
        assert inputs["metadata"]["labels"] == n.labels
        assert HOSTNAME_LABEL not in inputs["metadata"]["labels"]
        # a node without taints (a head node) gets no spec: gpuctl owns only what it sets
        assert inputs.get("spec", {}).get("taints", []) == [t.model_dump() for t in n.taints]
        assert ("spec" in inputs) == bool(n.taints)


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_kueue_topology_and_flavor(site: str) -> None:
    [topo] = by_type(site)["kubernetes:kueue.x-k8s.io/v1beta2:Topology"]
    flavors = by_type(site)["kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor"]
    levels = [lv["nodeLabel"] for lv in topo.inputs["spec"]["levels"]]
    assert levels == [BLOCK_LABEL, RACK_LABEL, HOSTNAME_LABEL]
    assert [f.inputs["metadata"]["name"] for f in flavors] == [
        f.name for f in config_of(site).kueue.flavors] and flavors
    for flavor in flavors:
        assert flavor.inputs["spec"]["topologyName"] == topo.inputs["metadata"]["name"]
    [rule] = by_type(site)["kubernetes:monitoring.coreos.com/v1:PrometheusRule"]
    alerts = {r["alert"] for g in rule.inputs["spec"]["groups"] for r in g["rules"]}
    assert {"GpuXidCritical", "GpuEccDoubleBitErrors", "InfinibandLinkDown"} <= alerts


def test_dry_run_lists_sorted_type_name_pairs() -> None:
    rows = ps.dry_run_resources(config_of("lab"))
    assert rows == sorted(rows)
    assert (RELEASE, "gpu-operator") in rows
    assert sum(t == NODE_PATCH for t, _ in rows) == 4


def test_up_without_cli_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ExecutionError) as err:
        ps.run("up", config_of("lab"))
    assert str(err.value) == ps.INSTALL_HINT
    assert "\n" not in str(err.value)


def test_write_stack_config(tmp_path: Path) -> None:
    path = ps.write_stack_config(config_of("lab"), tmp_path)
    assert path.name == "Pulumi.lab.yaml"
    assert "gpuctl-platform:platform:" in path.read_text()
    with pytest.raises(ExecutionError, match="cannot write"):
        ps.write_stack_config(config_of("lab"), tmp_path / "missing")


def test_missing_components_module(tmp_path: Path) -> None:
    with pytest.raises(ExecutionError, match="components module is missing"):
        ps.load_components(tmp_path)


def test_first_line_prefers_the_error() -> None:
    text = "code: 255\nstdout: \nstderr: warning: x\nerror: failed to load kubeconfig\n"
    assert ps._first_line(text) == "error: failed to load kubeconfig"


def test_cli_config_preview_and_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    site = str(SITES / "lab")
    out = tmp_path / "Pulumi.lab.yaml"
    res = runner.invoke(platform, ["config", site, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith("# Pulumi stack lab")
    res = runner.invoke(platform, ["config", site])
    assert res.output == out.read_text()
    res = runner.invoke(platform, ["preview", site, "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert {"type": RELEASE, "name": "kueue"} in rows
    res = runner.invoke(platform, ["manifests", site])
    assert "kind: Topology" in res.output and res.output.count("kind: Node\n") == 4
    res = runner.invoke(platform, ["nccl-job", site, "lab-gpu-01", "lab-gpu-02"])
    assert res.exit_code == 0 and "kind: MPIJob" in res.output
    monkeypatch.setenv("PATH", "/nonexistent")
    res = runner.invoke(platform, ["up", site])
    assert res.exit_code != 0
    assert isinstance(res.exception, ExecutionError)
    assert str(res.exception) == ps.INSTALL_HINT


def test_cli_reports_errors_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from provision.cli.main import cli

    runner = CliRunner()
    monkeypatch.setenv("PATH", "/nonexistent")
    res = runner.invoke(cli, ["platform", "up", str(SITES / "lab")], obj={})
    if res.exit_code == 2 and "No such command" in res.output:
        pytest.skip("platform group not registered in the main CLI yet")
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [f"gpuctl: error: {ps.INSTALL_HINT}"]


def test_provision_platform_phase_dry_run_and_up(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = load_and_plan(SITES / "lab")[1]
    result = ps.provision_platform(plan, dry_run=True)
    assert (result.site, result.operation) == ("lab", "dry-run")
    assert (RELEASE, "network-operator") in result.resources
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ExecutionError, match="install the Pulumi CLI"):
        ps.provision_platform(plan)


def test_thin_program_reads_the_generated_stack_config() -> None:
    """Run stacks/platform/__main__.py under mocks with the config `platform config` writes."""
    import runpy

    import pulumi
    import yaml

    cfg = config_of("lab")
    recorded: list[str] = []

    class Recorder(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            recorded.append(args.typ)
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
            return {}, None

    settings = yaml.safe_load(stack_file(cfg))["config"]
    pulumi.runtime.set_mocks(Recorder(), project="gpuctl-platform", stack="lab", preview=False)
    pulumi.runtime.set_all_config({k: json.dumps(v) for k, v in settings.items()})
    main = ps.STACK_DIR / "__main__.py"

    @pulumi.runtime.test  # type: ignore[untyped-decorator,unused-ignore]
    def program() -> Any:
        with ps._stack_on_path(ps.STACK_DIR):
            ns = runpy.run_path(str(main), run_name="__main__")
        return ns["platform"].urn

    try:
        program()
    finally:
        pulumi.runtime.set_all_config({})
    assert recorded.count(NODE_PATCH) == 4
    assert recorded.count(RELEASE) == 3
