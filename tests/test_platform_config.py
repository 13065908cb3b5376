"""Platform stack config and manifests derived from each example site's plan (pure).

Validation: core objects (Namespace, ConfigMap, Node, and the MPIJob's pod templates wrapped
as v1 PodTemplates) are checked by kubernetes-validate in strict mode against the site's
Kubernetes version. kubernetes-validate ships no schemas for custom resources and the CRD
schemas cannot be fetched offline, so the Kueue Topology/ResourceFlavor, the PrometheusRule
and the MPIJob envelope are checked structurally against the small JSON schemas below
(written from the Kueue v1beta2, prometheus-operator v1 and kubeflow v2beta1 API references,
including Kueue's own rules: 1-8 unique levels, hostname only as the last level).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from provision.errors import UsageError
from provision.plan.build import Plan
from provision.plan.layout import Node
from provision.plan.load import load_and_plan
from provision.platform import config as pc
from provision.platform import manifests as mf
from provision.platform.model import (
    BLOCK_LABEL,
    HALL_LABEL,
    HOSTNAME_LABEL,
    RACK_LABEL,
    ROW_LABEL,
    TOPOGRAPH_BLOCK,
    TOPOGRAPH_DATACENTER,
    TOPOGRAPH_SPINE,
    PlatformConfig,
)
from provision.platform.mpijob import render_mpijob
from tests.conftest import EXAMPLE_SITES, ROOT, SITES

LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
NODE_LABEL_PATTERN = LABEL_KEY.pattern

TOPOLOGY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kueue.x-k8s.io/v1beta2"}, "kind": {"const": "Topology"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object", "required": ["levels"], "additionalProperties": False,
                 "properties": {"levels": {
                     "type": "array", "minItems": 1, "maxItems": 8, "uniqueItems": True,
                     "items": {"type": "object", "required": ["nodeLabel"],
                               "additionalProperties": False,
                               "properties": {"nodeLabel": {
                                   "type": "string", "minLength": 1, "maxLength": 316,
                                   "pattern": NODE_LABEL_PATTERN}}}}}}}}
TOLERATION = {"type": "object", "additionalProperties": False,
              "properties": {"key": {"type": "string"}, "operator": {"enum": ["Exists", "Equal"]},
                             "value": {"type": "string"},
                             "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
                             "tolerationSeconds": {"type": "integer"}}}
FLAVOR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kueue.x-k8s.io/v1beta2"}, "kind": {"const": "ResourceFlavor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object", "additionalProperties": False, "properties": {
            "nodeLabels": {"type": "object", "maxProperties": 8,
                           "additionalProperties": {"type": "string"}},
            "nodeTaints": {"type": "array"},
            "tolerations": {"type": "array", "maxItems": 8, "items": TOLERATION},
            "topologyName": {"type": "string", "minLength": 1}}}}}
RULE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {"type": "object", "required": ["groups"], "additionalProperties": False,
                 "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                     "type": "object", "required": ["name", "rules"],
                     "properties": {"name": {"type": "string"}, "rules": {
                         "type": "array", "minItems": 1, "items": {
                             "type": "object", "required": ["alert", "expr"],
                             "additionalProperties": False,
                             "properties": {
                                 "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                 "expr": {"type": "string", "minLength": 1},
                                 "for": {"type": "string", "pattern": r"^\d+[smhdwy]$"},
                                 "labels": {"type": "object",
                                            "additionalProperties": {"type": "string"}},
                                 "annotations": {"type": "object",
                                                 "additionalProperties": {"type": "string"}},
                             }}}}}}}}}}
MPIJOB_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "kubeflow.org/v2beta1"}, "kind": {"const": "MPIJob"},
        "spec": {"type": "object", "required": ["mpiReplicaSpecs"], "additionalProperties": False,
                 "properties": {
                     "slotsPerWorker": {"type": "integer", "minimum": 1},
                     "mpiImplementation": {"enum": ["OpenMPI", "Intel", "MPICH"]},
                     "runPolicy": {"type": "object"},
                     "sshAuthMountPath": {"type": "string"},
                     "launcherCreationPolicy": {"enum": ["AtStartup", "WaitForWorkersReady"]},
                     "mpiReplicaSpecs": {
                         "type": "object", "required": ["Launcher", "Worker"],
                         "additionalProperties": False,
                         "patternProperties": {"^(Launcher|Worker)$": {
                             "type": "object", "required": ["replicas", "template"],
                             "properties": {"replicas": {"type": "integer", "minimum": 1},
                                            "template": {"type": "object"}}}}}}}}}


@cache
def plan_of(site: str) -> Plan:
    return load_and_plan(SITES / site)[1]


@cache
def config_of(site: str) -> PlatformConfig:
    return pc.stack_config(plan_of(site))


def kube_nodes(plan: Plan) -> list[Node]:
    """The plan's Kubernetes nodes: every node but storage servers (docs/roles.md)."""
    return [n for n in plan.nodes if n.role != "storage"]


def on_compute_fabric(plan: Plan) -> set[str]:
    """Nodes cabled to the compute fabric: only they have a fabric block and spine (a head
    node beside the GPU nodes, such as lab-vm's provisioning host, has neither)."""
    fab = plan.fabrics["compute"]
    return {lk.a for lk in fab.links if lk.kind == "node-leaf"}


def k8s_version(site: str) -> str:
    return plan_of(site).site.software.kubernetes or kubernetes_validate.latest_version()


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_plan_node_gets_location_block_and_topograph_labels(site: str) -> None:
    plan, cfg = plan_of(site), config_of(site)
    kube, fabric = kube_nodes(plan), on_compute_fabric(plan)
    assert [n.name for n in cfg.nodes] == [n.name for n in kube]  # every Kubernetes node
    racks = {r.name: r for r in plan.racks}
    for node, spec in zip(kube, cfg.nodes, strict=True):
        rack = racks[node.rack]
        lb = spec.labels
        assert HOSTNAME_LABEL not in lb  # the kubelet's label, never patched
        assert (lb[HALL_LABEL], lb[ROW_LABEL], lb[RACK_LABEL]) == (rack.hall, rack.row, rack.name)
        assert lb[TOPOGRAPH_DATACENTER] == f"{site}-{rack.hall}"
        if node.name in fabric:
            assert lb[BLOCK_LABEL] == lb[TOPOGRAPH_BLOCK]
            assert lb[TOPOGRAPH_SPINE]
        else:
            assert BLOCK_LABEL not in lb and TOPOGRAPH_SPINE not in lb
        for k, v in lb.items():
            assert LABEL_KEY.match(k) and len(k.split("/")[-1]) <= 63, k
            assert LABEL_VALUE.match(v), (k, v)
        gpu = node.role == "gpu" and plan.catalog.nodes[node.type].gpus > 0
        assert [t.key for t in spec.taints] == (["nvidia.com/gpu"] if gpu else [])


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_block_follows_the_fabric_topology(site: str) -> None:
    plan, cfg = plan_of(site), config_of(site)
    fab = plan.fabrics["compute"]
    leaves = {s.name: s for s in fab.switches}
    links = [lk for lk in fab.links if lk.kind == "node-leaf"]
    block = {n.name: n.labels[BLOCK_LABEL] for n in cfg.nodes if BLOCK_LABEL in n.labels}
    assert set(block) == on_compute_fabric(plan)
    if fab.topology == "rail-optimized":
        for lk in links:  # every rail of a node lands in the node's SU
            assert block[lk.a] == f"su{leaves[lk.b].su:02d}"
    elif fab.topology == "multi-plane":
        assert cfg.planes == plan.site.fabrics.compute.planes  # type: ignore[union-attr]
        for lk in links:  # one NIC per plane: the node's plane-0 leaf is its block
            if lk.plane == 0:
                assert block[lk.a] == lk.b
    else:
        for lk in links:
            if lk.rail == 0:
                assert block[lk.a] == lk.b
    assert len(set(block.values())) > (1 if len(plan.nodes) > 32 else 0)


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_operators_pinned_and_driver_left_to_the_host(site: str) -> None:
    cfg = config_of(site)
    charts = [cfg.gpu_operator.chart, cfg.network_operator.chart, cfg.kueue.chart,
              cfg.mpi_operator]
    for c in charts:
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", c.version), c
        assert c.source.startswith("https://")
    assert cfg.gpu_operator.chart.version == "v25.10.1"
    values = mf.gpu_operator_values(cfg)
    assert values["driver"] == {"enabled": False}
    assert values["toolkit"] == {"enabled": False}
    assert values["dcgmExporter"]["enabled"] is True
    assert mf.network_operator_values(cfg)["ofedDriver"] == {"deploy": False}
    in_operator = pc.stack_config(plan_of(site), host_installs_driver=False)
    v2 = mf.gpu_operator_values(in_operator)
    assert v2["driver"]["enabled"] is True and v2["toolkit"]["enabled"] is True
    assert v2["driver"]["version"] == plan_of(site).site.software.driver_version


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_rdma_resource_per_rail_selects_the_ipoib_netdev(site: str) -> None:
    plan, cfg = plan_of(site), config_of(site)
    hcas = plan.catalog.nodes[plan.nodes[0].type].compute_hcas
    res = mf.network_operator_values(cfg)["rdmaSharedDevicePlugin"]["resources"]
    assert [r["name"] for r in res] == [f"rail{i}" for i in range(len(hcas))]
    assert [r["ifNames"] for r in res] == [[f"ib{i}"] for i in range(len(hcas))]
    assert [rr.devices for rr in cfg.network_operator.rdma_resources] == \
        [[h.device] for h in hcas]
    assert all(r["linkTypes"] == ["infiniband"] for r in res)  # doca-ofed profile, IB fabric


def test_roce_profile_selects_ethernet_links() -> None:
    plan = plan_of("lab")
    sw = plan.site.software.model_copy(update={"doca_profile": "doca-roce"})
    site = plan.site.model_copy(update={"software": sw})
    roce = pc.stack_config(Plan(**{**plan.__dict__, "site": site}))
    assert {t for r in roce.network_operator.rdma_resources for t in r.link_types} == {"ether"}


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_stack_file_round_trips_and_is_deterministic(site: str) -> None:
    cfg = config_of(site)
    text = pc.stack_file(cfg)
    assert text == pc.stack_file(pc.stack_config(plan_of(site)))
    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert list(doc["config"]) == [f"{pc.PROJECT}:{pc.CONFIG_KEY}"]
    assert pc.load_config(doc["config"][f"{pc.PROJECT}:{pc.CONFIG_KEY}"]) == cfg
    project = yaml.safe_load((ROOT / "stacks/platform/Pulumi.yaml").read_text())
    assert project["name"] == pc.PROJECT


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_core_manifests_validate_strictly(site: str) -> None:
    cfg = config_of(site)
    nodes = mf.node_manifests(cfg)
    assert len(nodes) == len(kube_nodes(plan_of(site)))
    version = k8s_version(site)
    for d in [*mf.namespaces(cfg), mf.dcgm_metrics_configmap(cfg)]:
        kubernetes_validate.validate(d, version, strict=True)
    # One NodeList holds every Node: the same strict schema, one call instead of 2,048.
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "NodeList", "metadata": {},
                                  "items": nodes}, version, strict=True)


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_custom_resources_validate_structurally(site: str) -> None:
    cfg = config_of(site)
    topo, *flavors, rule = mf.custom_resources(cfg)  # one flavor per GPU node group
    jsonschema.validate(topo, TOPOLOGY_SCHEMA)
    assert [f["metadata"]["name"] for f in flavors] == [
        f"{site}-{g.name}" for g in plan_of(site).site.node_groups if g.role == "gpu"]
    for flavor in flavors:
        jsonschema.validate(flavor, FLAVOR_SCHEMA)
        assert flavor["spec"]["topologyName"] == topo["metadata"]["name"]
    jsonschema.validate(rule, RULE_SCHEMA)
    levels = [lv["nodeLabel"] for lv in topo["spec"]["levels"]]
    assert levels == [BLOCK_LABEL, RACK_LABEL, HOSTNAME_LABEL]
    fabric = on_compute_fabric(plan_of(site))
    for n in cfg.nodes:  # every level is a label every fabric node carries (hostname: kubelet's)
        if n.name in fabric:
            assert set(levels) <= set(n.labels) | {HOSTNAME_LABEL}, n.name
    exprs = " ".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    for metric in ("DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
                   "node_infiniband_state_id"):
        assert metric in exprs
    counters = mf.dcgm_metrics_csv()
    assert "DCGM_FI_DEV_XID_ERRORS" in counters and "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" in counters
    text = mf.render_yaml(mf.all_manifests(cfg))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert list(yaml.load_all(text, Loader=loader)) == mf.all_manifests(cfg)


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_mpijob_places_workers_by_topology(site: str) -> None:
    plan, cfg = plan_of(site), config_of(site)
    fabric = on_compute_fabric(plan)
    first = next(n for n in cfg.nodes if n.name in fabric).labels
    same_block = [n.name for n in cfg.nodes
                  if n.labels.get(BLOCK_LABEL) == first[BLOCK_LABEL]][:2]
    job = yaml.safe_load(render_mpijob(plan, same_block, queue="gpu"))
    jsonschema.validate(job, MPIJOB_SCHEMA)
    worker = job["spec"]["mpiReplicaSpecs"]["Worker"]
    assert worker["replicas"] == len(same_block)
    spec = worker["template"]["spec"]
    assert spec["nodeSelector"][BLOCK_LABEL] == first[BLOCK_LABEL]
    assert spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "topologyKey"] == BLOCK_LABEL
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == same_block
    limits = spec["containers"][0]["resources"]["limits"]
    ntype = plan.catalog.nodes[plan.nodes[0].type]
    assert limits["nvidia.com/gpu"] == ntype.gpus == job["spec"]["slotsPerWorker"]
    assert sorted(k for k in limits if k.startswith("rdma/")) == \
        sorted(f"rdma/{r.name}" for r in cfg.network_operator.rdma_resources)
    launcher = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]
    assert f"-np {ntype.gpus * len(same_block)}" in launcher["spec"]["containers"][0]["command"][2]
    for tmpl in (launcher, worker["template"]):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate",
                                      "metadata": {"name": "t"}, "template": tmpl},
                                     k8s_version(site), strict=True)


def test_mpijob_across_blocks_drops_the_block_constraint() -> None:
    cfg = config_of("superpod-h100-4su")
    by_block: dict[str, str] = {}
    for n in cfg.nodes:
        by_block.setdefault(n.labels[BLOCK_LABEL], n.name)
    nodes = list(by_block.values())[:2]
    spec = yaml.safe_load(render_mpijob(plan_of("superpod-h100-4su"), nodes))[
        "spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "podAffinity" not in spec["affinity"] and "nodeSelector" not in spec


@pytest.mark.parametrize(("nodes", "test", "needle"), [
    (["nope"], "all_reduce_perf", "'nope' is not in site lab"),
    (["lab-gpu-01"], "bogus_perf", "unknown nccl test 'bogus_perf'"),
    (["lab-gpu-01", "lab-gpu-01"], "all_reduce_perf", "names a node twice"),
    ([], "all_reduce_perf", "at least one node"),
])
def test_mpijob_rejects_bad_input_with_one_line(nodes: list[str], test: str,
                                                needle: str) -> None:
    with pytest.raises(UsageError, match=re.escape(needle)):
        render_mpijob(plan_of("lab"), nodes, test)


def test_platform_package_is_pure() -> None:
    import ast

    bad = []
    for path in sorted((ROOT / "provision/platform").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{Path(path).name}: {n}" for n in names
                    if n.split(".")[0] in {"pulumi", "pulumi_kubernetes", "subprocess", "socket"}
                    or n.startswith(("provision.execute", "provision.cli"))]
    assert bad == []


def _kueue_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kueue documents without metadata other than the name (the stack adds its own
    managed-by label)."""
    return [{**{k: v for k, v in d.items() if k != "metadata"}, "name": d["metadata"]["name"]}
            for d in docs if d["apiVersion"].startswith("kueue.x-k8s.io/")]


def _same_as_the_plan(plan: Plan, cfg: PlatformConfig) -> None:
    from provision.render import k8s  # k8s/node-labels.yaml and k8s/kueue-topology.yaml

    planned = [d for d in yaml.safe_load_all(k8s.node_labels(plan)) if d]
    assert [(d["metadata"]["name"], d["metadata"]["labels"], d.get("spec", {}).get("taints", []))
            for d in planned] == [(n.name, n.labels, [t.model_dump() for t in n.taints])
                                  for n in cfg.nodes]
    kueue = [d for d in yaml.safe_load_all(k8s.kueue(plan)) if d]
    assert _kueue_docs(kueue) == _kueue_docs(mf.custom_resources(cfg))


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_platform_labels_and_kueue_topology_are_the_plans(site: str) -> None:
    """One source of truth: the node labels, taints, Kueue Topology and ResourceFlavors the
    platform stack applies are exactly what `gpuctl plan` writes to k8s/."""
    _same_as_the_plan(plan_of(site), config_of(site))


def test_storage_nodes_get_no_kubernetes_labels_or_flavor(tmp_path: Path) -> None:
    from tests.mixed_site import write_mixed_site

    _, plan = load_and_plan(write_mixed_site(tmp_path / "mixed"))
    cfg = pc.stack_config(plan)
    assert len(plan.nodes) == 191
    assert [n.name for n in cfg.nodes] == [n.name for n in plan.nodes if n.role != "storage"]
    assert [(f.name, f.node_labels, f.gpus) for f in cfg.kueue.flavors] == [
        ("superpod-h100-4su-dgx", {"gpuctl.io/node-group": "dgx"}, 127 * 8)]
    _same_as_the_plan(plan, cfg)
