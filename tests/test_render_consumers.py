"""Every rendered artifact of every example site, loaded by the program that consumes it.

ansible-inventory, kea-dhcp4 -t, named-checkzone, kubernetes-validate and cloud-init schema
are the real consumers (Debian/PyPI); Slurm's topology files, OpenSM's files and the NetBox
import are checked by small parsers that apply the consumers' rules. A consumer that is not
installed skips its test with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from provision.plan.build import Plan
from tests.render_support import check_slurm_block, check_slurm_tree, render_site, site_plan

SITES = ["lab", "superpod-h100-4su", "fireflyer-pcie",
         pytest.param("mpft-16k", marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=SITES)
def rendered(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, str]]:
    site = request.param
    out = tmp_path_factory.mktemp(f"render-{site}")
    return site, out, render_site(site, out)


def _need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists()
                                  else None)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


def _run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_ansible_inventory_lists_every_host_and_group(rendered: tuple[str, Path, dict[str, str]]
                                                      ) -> None:
    site, out, _ = rendered
    plan = site_plan(site)
    res = _run([_need("ansible-inventory"), "-i", str(out / "ansible/inventory.yml"), "--list"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "[WARNING]" not in res.stderr, res.stderr[-2000:]
    inv = json.loads(res.stdout)
    hostvars = inv["_meta"]["hostvars"]
    assert len(hostvars) == len(plan.nodes) + len(plan.switches)

    def hosts(group: str) -> set[str]:
        found = set(inv.get(group, {}).get("hosts", []))
        for child in inv.get(group, {}).get("children", []):
            found |= hosts(child)
        return found

    for role, count in Counter(n.role for n in plan.nodes).items():
        assert len(hosts(f"role_{role}")) == count
    assert len(hosts("role_switch")) == len(plan.switches)
    for g in plan.site.node_groups:
        assert hosts(g.name.replace("-", "_")) == {n.name for n in plan.nodes
                                                   if n.group == g.name}
    per_rack = Counter([n.rack for n in plan.nodes] + [s.rack for s in plan.switches])
    for rack, count in per_rack.items():
        assert len(hosts(f"rack_{rack}".replace("-", "_"))) == count
    n0 = plan.nodes[0]
    v = hostvars[n0.name]
    inband = [a.address for a in plan.addresses_of(n0.name) if a.pool == "inband"]
    assert v["ansible_host"] == inband[0]
    assert v["gpuctl_rack"] == n0.rack and v["gpuctl_rack_u"] == n0.u
    assert v["gpuctl_driver_version"] == plan.site.software.driver_version  # group_vars/all
    assert "lookup(" in v["gpuctl_bmc_password"]  # a lookup, never a value
    if plan.rails:
        assert len(v["gpuctl_hca_rails"]) == plan.rails


def test_kea_accepts_dhcp_config(rendered: tuple[str, Path, dict[str, str]]) -> None:
    site, out, files = rendered
    res = _run([_need("kea-dhcp4"), "-t", str(out / "dhcp/kea-dhcp4.conf")])
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    cfg = json.loads(files["dhcp/kea-dhcp4.conf"])["Dhcp4"]
    plan = site_plan(site)
    reserved = {r["ip-address"] for s in cfg["subnet4"] for r in s["reservations"]}
    wanted = {a.address for a in plan.addresses if a.pool in ("inband", "oob", "switch_mgmt")}
    assert reserved == wanted


def test_named_checkzone_accepts_every_zone(rendered: tuple[str, Path, dict[str, str]]) -> None:
    site, out, files = rendered
    tool = _need("named-checkzone")
    zones = sorted(p for p in files if p.endswith(".zone"))
    plan = site_plan(site)
    assert f"dns/{plan.site.site.domain}.zone" in zones
    for rel in zones:
        zone = Path(rel).name.removesuffix(".zone")
        res = _run([tool, "-k", "fail", "-n", "fail", zone, str(out / rel)])
        assert res.returncode == 0, f"{rel}: {res.stdout}{res.stderr}"
    forward = files[f"dns/{plan.site.site.domain}.zone"]
    for n in plan.nodes[:50]:
        assert re.search(rf"^{re.escape(n.name)} IN A ", forward, re.M)
    ptrs = sum(files[z].count(" IN PTR ") for z in zones)
    assert ptrs == len({a.address for a in plan.addresses} | {
        s.gateway for s in plan.subnets if s.gateway})


VALIDATED_NODE_DOCS = 200
"""kubernetes-validate takes ~20 ms a document: past this many Node documents (mpft-16k has
2,048, one template each) it validates the first ones and the last, not all (40 s)."""


def test_kubernetes_manifests_validate(rendered: tuple[str, Path, dict[str, str]],
                                       tmp_path: Path) -> None:
    site, out, files = rendered
    plan = site_plan(site)
    if plan.site.software.kubernetes is None:
        assert not any(p.startswith("k8s/") for p in files)
        return
    tool = _need("kubernetes-validate")
    version = plan.site.software.kubernetes
    version = version if version.count(".") == 2 else f"{version}.0"
    nodes = [d for d in yaml.safe_load_all(files["k8s/node-labels.yaml"]) if d]
    labels = out / "k8s/node-labels.yaml"
    if len(nodes) > VALIDATED_NODE_DOCS:
        labels = tmp_path / "node-labels-sample.yaml"
        labels.write_text(yaml.safe_dump_all(
            [*nodes[:VALIDATED_NODE_DOCS - 1], nodes[-1]], sort_keys=False))
    res = _run([tool, "--strict", "--quiet", "-k", version, str(labels),
                str(out / "k8s/kueue-topology.yaml")])
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    docs = [d for d in yaml.safe_load_all(files["k8s/kueue-topology.yaml"]) if d]
    topo = next(d for d in docs if d["kind"] == "Topology")
    levels = [lv["nodeLabel"] for lv in topo["spec"]["levels"]]
    assert levels[-1] == "kubernetes.io/hostname" and len(levels) == 3
    for node in nodes:
        for label in levels[:-1]:
            assert label in node["metadata"]["labels"], node["metadata"]["name"]
    for flavor in (d for d in docs if d["kind"] == "ResourceFlavor"):
        assert flavor["spec"]["topologyName"] == topo["metadata"]["name"]


def _fabric_nodes(plan: Plan) -> set[str]:
    return {lk.a for lk in plan.node_fabric_links()}


def test_slurm_topology_tree_and_block(rendered: tuple[str, Path, dict[str, str]]) -> None:
    site, _, files = rendered
    nodes = _fabric_nodes(site_plan(site))
    check_slurm_tree(files["slurm/topology.conf"], nodes)
    check_slurm_block(files["slurm/topology-block.conf"], nodes)


def test_opensm_files_are_complete(rendered: tuple[str, Path, dict[str, str]]) -> None:
    site, _, files = rendered
    confs = sorted(p for p in files if p.endswith("opensm.conf"))
    assert confs
    for rel in confs:
        conf = files[rel]
        base = str(Path(rel).parent)
        for key in ("root_guid_file", "partition_config_file", "node_name_map_name"):
            m = re.search(rf"^{key} (\S+)$", conf, re.M)
            assert m, f"{rel}: no {key}"
            assert f"{base}/{Path(m.group(1)).name}" in files
        assert re.search(r"^routing_engine (ftree|updn)$", conf, re.M)
        roots = [ln for ln in files[f"{base}/root_guids.conf"].splitlines()
                 if not ln.startswith("#")]
        assert roots and all(re.fullmatch(r"0x[0-9a-f]{16}", g) for g in roots)
        names = files[f"{base}/node-name-map"].splitlines()[1:]
        assert all(re.fullmatch(r'0x[0-9a-f]{16} "[^"]+"', ln) for ln in names)
        assert files[f"{base}/partitions.conf"].splitlines()[1] == \
            "Default=0x7fff,ipoib:ALL=full;"


def test_netbox_import_is_consistent(rendered: tuple[str, Path, dict[str, str]]) -> None:
    site, _, files = rendered
    plan = site_plan(site)

    def rows(name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(files[f"netbox/{name}.csv"])))

    makers = {r["name"] for r in rows("manufacturers")}
    roles = {r["slug"] for r in rows("device-roles")}
    types = {(d["manufacturer"], d["model"]) for d in
             yaml.safe_load_all(files["netbox/device-types.yaml"])}
    racks = {r["name"] for r in rows("racks")}
    locations = {r["name"] for r in rows("locations")}
    assert {r["location"] for r in rows("racks")} <= locations
    devices = rows("devices")
    pdus = [p for f in plan.power.feeds for p in f.pdus if plan.addresses_of(p.name)]
    assert len(devices) == len(plan.nodes) + len(plan.switches) + len(plan.appliances) + \
        len(pdus)
    for d in devices:
        assert d["manufacturer"] in makers and d["role"] in roles and d["rack"] in racks
        assert (d["manufacturer"], d["device_type"]) in types
    names = {d["name"] for d in devices}
    ifaces = {(r["device"], r["name"]) for r in rows("interfaces")}
    assert all(dev in names for dev, _ in ifaces)
    cables = rows("cables")
    assert len(cables) == len(plan.cables)
    for c in cables:
        assert (c["side_a_device"], c["side_a_name"]) in ifaces
        assert (c["side_b_device"], c["side_b_name"]) in ifaces
    ends = Counter((c["side_a_device"], c["side_a_name"]) for c in cables) + Counter(
        (c["side_b_device"], c["side_b_name"]) for c in cables)
    assert max(ends.values()) == 1, "an interface takes one cable"
    for ip in rows("ip-addresses"):
        assert (ip["device"], ip["interface"]) in ifaces


def test_cloud_init_user_data(rendered: tuple[str, Path, dict[str, str]],
                              tmp_path: Path) -> None:
    site, out, files = rendered
    plan = site_plan(site)
    seeds = sorted(p for p in files if p.endswith("/user-data"))
    assert {Path(p).parent.name for p in seeds} == {n.group for n in plan.nodes}
    tool = shutil.which("cloud-init")
    for rel in seeds:
        text = files[rel]
        assert text.startswith("#cloud-config\n")
        data = yaml.safe_load(text)
        auto = data["autoinstall"]
        assert auto["version"] == 1
        assert {"network", "storage", "ssh", "user-data"} <= set(auto)
        assert not re.search(r"^\s*(passwd|password|hashed_passwd|plain_text_passwd):", text,
                             re.M), "no password of any kind in user-data"
        if tool is None:
            continue
        inner = tmp_path / f"{Path(rel).parent.name}-inner.yaml"
        inner.write_text("#cloud-config\n" + yaml.safe_dump(auto["user-data"]))
        for path in (out / rel, inner):
            res = _run([tool, "schema", "-c", str(path)], timeout=120)
            assert res.returncode == 0, f"{path}: {res.stdout}{res.stderr}"
