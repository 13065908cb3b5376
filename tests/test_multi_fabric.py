"""Several InfiniBand fabrics in one site (``fabrics.infiniband``): plan, renders, verify scope.

The two-zone test site has a compute fabric of four 8-HCA DGX A100s and a zone2 fabric of
eight 1-HCA PCIe nodes. Each fabric must be a subnet of its own in everything generated
(switches, links, cables, GUID files, opensm.conf, ibsim net file) and ``fabric verify``
must check one fabric at a time. Single-fabric sites keep their file names (the render
goldens prove that); lint codes GPU147-149 are proven by the broken corpus.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.errors import PlanError, UsageError
from provision.fabric.expected import expected_fabric, parse_scope
from provision.fabric.netedit import NetFile
from provision.fabric.topology import parse_ibnetdiscover
from provision.fabric.verify import verify
from provision.plan.build import Plan, build_plan, summary
from provision.plan.load import load_and_plan
from provision.render.artifacts import fabric_tree
from provision.render.ibsim import ib_fabric, ibsim_net, port_guid, sm_node, synthetic_guids
from provision.render.opensm import routing
from provision.render.slurm import slurm_tree
from tests.render_support import check_slurm_block, check_slurm_tree, expand_hostlist, parse_slurm

ROOT = Path(__file__).resolve().parents[1]
TWO_ZONE = ROOT / "tests" / "sites" / "two-zone"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_and_plan(TWO_ZONE)[1]


def _hosts(plan: Plan, fabric: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for lk in plan.fabrics[fabric].links:
        if lk.kind == "node-leaf":
            out.setdefault(lk.a, set()).add(lk.a_port)
    return out


def test_each_group_is_cabled_to_its_own_fabric_with_its_own_hca_count(plan: Plan) -> None:
    assert plan.ib_names() == ["compute", "zone2"]
    compute, zone2 = _hosts(plan, "compute"), _hosts(plan, "zone2")
    assert sorted(compute) == [f"dgx-{i:02d}" for i in range(1, 5)]
    assert sorted(zone2) == [f"ff-{i:02d}" for i in range(1, 9)]
    assert all(len(ports) == 8 for ports in compute.values())
    assert all(ports == {"mlx5_0"} for ports in zone2.values())
    # No link crosses between the fabrics, and every switch name is unique and prefixed.
    for name in ("compute", "zone2"):
        sw = {s.name for s in plan.fabrics[name].switches}
        ends = {e for lk in plan.fabrics[name].links for e in (lk.a, lk.b)}
        assert ends <= sw | set(_hosts(plan, name)) | {"ufm"}
    zone2_sw = [s.name for s in plan.fabrics["zone2"].switches]
    assert zone2_sw == ["ib-zone2-leaf001", "ib-zone2-spine01"]
    names = [s.name for s in plan.switches]
    assert len(names) == len(set(names))
    assert plan.node_fabric_links() == [lk for n in ("compute", "zone2")
                                        for lk in plan.fabrics[n].links if lk.kind == "node-leaf"]


def test_each_fabric_has_its_own_ipoib_subnets(plan: Plan) -> None:
    ipoib = {s.name: s.cidr for s in plan.subnets if s.pool == "ipoib"}
    assert ipoib["zone2-rail0"] == "10.230.128.0/20"
    assert sorted(ipoib) == sorted([f"rail{r}" for r in range(8)] + ["zone2-rail0"])
    for n in plan.nodes:
        got = [(a.interface, a.subnet) for a in plan.addresses_of(n.name) if a.pool == "ipoib"]
        if n.group == "ff":
            assert got == [("ib0", "10.230.128.0/20")]
        else:
            assert [i for i, _ in got] == [f"ib{r}" for r in range(8)]
            assert "10.230.128.0/20" not in {c for _, c in got}
    ips = [a.address for a in plan.addresses if a.pool == "ipoib"]
    assert len(ips) == len(set(ips)) == 4 * 8 + 8


def test_burnin_partners_stay_on_the_rack_fabric(plan: Plan) -> None:
    from provision.burnin.targets import other_rack_node, rack_targets

    assert plan.ib_fabric_of("ff-01") == "zone2" and plan.ib_fabric_of("dgx-01") == "compute"
    # zone2's only rack has no partner rack on zone2; a DGX one rack away is no IB peer.
    assert other_rack_node(plan, "a02") is None
    assert other_rack_node(plan, "a01") is None
    assert [t.leaf for t in rack_targets(plan, "a02")] == ["ib-zone2-leaf001"] * 8


def test_cables_and_summary_name_the_fabric(plan: Plan) -> None:
    zone2 = [c for c in plan.cables if c.fabric == "zone2"]
    assert len(zone2) == len(plan.fabrics["zone2"].links) == 8 + 20
    assert all(c.id.startswith("IB:") for c in zone2)
    ids = [c.id for c in plan.cables]
    assert len(ids) == len(set(ids))
    s = summary(plan)
    assert s["infiniband"] == {"zone2": {"topology": "fat-tree", "tiers": 2, "endpoints": 8,
                                         "max_endpoints": 800}}
    assert s["compute_fabric"]["endpoints"] == 32
    assert set(s["switches"]) == {"compute", "zone2", "inband", "oob"}


def test_every_fabric_gets_its_own_subnet_files(plan: Plan) -> None:
    files = fabric_tree(plan)
    assert fabric_tree(load_and_plan(TWO_ZONE)[1]) == files, "not deterministic"
    per_fabric = ["opensm.conf", "root_guids.conf", "cn_guids.conf", "partitions.conf",
                  "node-name-map"]
    assert sorted(files) == sorted(
        ["ibsim/fabric.net", "ibsim/zone2/fabric.net"]
        + [f"opensm/{f}" for f in per_fabric] + [f"opensm/zone2/{f}" for f in per_fabric])
    conf = files["opensm/zone2/opensm.conf"]
    assert "site two-zone, zone2 fabric." in conf
    # One leaf: OpenSM's ftree refuses it, so zone2 gets updn (the compute fabric ftree).
    assert [routing(ib_fabric(plan, fabric=f))[0] for f in ("compute", "zone2")] == \
        ["ftree", "updn"]
    assert "fewer than two leaf switches have compute nodes" in " ".join(conf.replace("#", "").split())
    assert re.findall(r"^\w+_file /\S+", conf, re.M) == [
        "root_guid_file /etc/opensm/zone2/root_guids.conf",
        "partition_config_file /etc/opensm/zone2/partitions.conf"]
    assert "node_name_map_name /etc/opensm/zone2/node-name-map" in conf
    assert "/etc/opensm/zone2/" not in files["opensm/opensm.conf"]
    g = synthetic_guids(plan)
    for fabric, base in (("compute", "opensm/"), ("zone2", "opensm/zone2/")):
        cas = [n for n in ib_fabric(plan, fabric=fabric).nodes if n.kind == "Hca"]
        listed = [ln for ln in files[f"{base}cn_guids.conf"].splitlines()
                  if not ln.startswith("#")]
        assert listed == [port_guid(g, n) for n in cas]
        net = files["ibsim/fabric.net" if fabric == "compute" else "ibsim/zone2/fabric.net"]
        assert f'"{sm_node(plan, fabric=fabric)}"' in net.splitlines()[4]
    zone2_net = files["ibsim/zone2/fabric.net"]
    assert "dgx-" not in zone2_net and "ib-spine01" not in zone2_net
    assert "ff-" not in files["ibsim/fabric.net"]
    assert "zone2=0x0002,ipoib" in files["opensm/zone2/partitions.conf"]
    assert "zone2=" not in files["opensm/partitions.conf"]


def test_slurm_gets_one_tree_per_fabric(plan: Plan) -> None:
    files = slurm_tree(plan)
    nodes = {n.name for n in plan.nodes}
    check_slurm_tree(files["slurm/topology.conf"], nodes, roots=2)
    check_slurm_block(files["slurm/topology-block.conf"], nodes)
    recs = {r["SwitchName"]: r for r in parse_slurm(files["slurm/topology.conf"])}

    def under(switch: str) -> set[str]:
        r = recs[switch]
        if "Nodes" in r:
            return set(expand_hostlist(r["Nodes"]))
        return {n for child in expand_hostlist(r["Switches"]) for n in under(child)}

    assert under("two-zone-ib") == set(_hosts(plan, "compute"))
    assert under("two-zone-ib-zone2") == set(_hosts(plan, "zone2"))


def test_verify_is_scoped_to_one_fabric(plan: Plan) -> None:
    exp = expected_fabric(plan, "zone2")
    assert exp.fabric == "zone2" and len(exp.links) == 28
    assert {lk.host for lk in exp.links.values() if lk.host} == {f"ff-{i:02d}" for i in
                                                                 range(1, 9)}
    net = NetFile(ibsim_net(plan, fabric="zone2"))
    net.drop(("ff-03 mlx5_0", 1))
    result = verify(parse_ibnetdiscover(net.text()), exp, parse_scope([], exp))
    assert [(f.kind, f.cables) for f in result.errors] == [("missing", ("IB:ff-03:mlx5_0",))]
    assert result.scope == "zone2 fabric, whole fabric"
    # The compute fabric's own capture is clean against the compute fabric...
    cexp = expected_fabric(plan)
    clean = verify(parse_ibnetdiscover(ibsim_net(plan)), cexp, parse_scope([], cexp))
    assert clean.ok and clean.matched == len(plan.fabrics["compute"].links)
    # ...and the other fabric's capture is nothing like it: every planned cable is missing.
    crossed = verify(parse_ibnetdiscover(ibsim_net(plan, fabric="zone2")), cexp,
                     parse_scope([], cexp))
    assert not crossed.ok and crossed.matched == 0
    with pytest.raises(UsageError, match=r"--scope host='dgx-01': no such host in the zone2 "):
        parse_scope(["host=dgx-01"], exp)
    with pytest.raises(UsageError, match=r"--fabric 'zone3'.*known: compute, zone2"):
        expected_fabric(plan, "zone3")


def test_cli_verify_takes_the_fabric(runner: CliRunner, plan: Plan, tmp_path: Path) -> None:
    capture = tmp_path / "zone2.txt"
    capture.write_text(ibsim_net(plan, fabric="zone2"))
    ok = runner.invoke(cli, ["fabric", "verify", str(TWO_ZONE), "--fabric", "zone2",
                             "--observed", str(capture)])
    assert ok.exit_code == 0, ok.output
    assert "zone2 fabric" in ok.stdout
    wrong = runner.invoke(cli, ["fabric", "verify", str(TWO_ZONE), "--observed", str(capture)])
    assert wrong.exit_code == 1
    bad = runner.invoke(cli, ["fabric", "verify", str(TWO_ZONE), "--fabric", "nope",
                              "--observed", str(capture)])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert [ln for ln in bad.output.splitlines() if ln] == [
        "gpuctl: error: --fabric 'nope': site two-zone has no such InfiniBand fabric; "
        "known: compute, zone2"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace("node_groups: [ff]", "node_groups: [ff, dgx]"),
     "node group dgx is on two InfiniBand fabrics (compute and zone2)"),
    (lambda s: s.replace("    zone2:\n", "    oob:\n"), "InfiniBand fabric name 'oob' is reserved"),
    (lambda s: s.replace("    zone2:\n      topology: fat-tree",
                         "    zone2:\n      topology: rail-optimized"),
     "zone2 fabric: UFM ports are planned on the compute fabric only"),
])
def test_plan_refuses_what_lint_reports(tmp_path: Path, edit: object, message: str) -> None:
    from provision.loader import load_site

    path = tmp_path / "two-zone" / "site.yaml"
    path.parent.mkdir()
    assert callable(edit)
    path.write_text(edit((TWO_ZONE / "site.yaml").read_text()))
    loaded = load_site(path)
    with pytest.raises(PlanError, match=re.escape(message)):
        build_plan(loaded.site, loaded.catalog)


def test_design_capacity_of_a_further_fabric(tmp_path: Path) -> None:
    text = (TWO_ZONE / "site.yaml").read_text().replace(
        '      ipoib_pkey: "0x8002"\n', '      ipoib_pkey: "0x8002"\n      design: {endpoints: 24}\n')
    path = tmp_path / "two-zone" / "site.yaml"
    path.parent.mkdir()
    path.write_text(text)
    plan = load_and_plan(path)[1]
    assert [(s.name, s.fabric) for s in plan.future_switches] == [("ib-zone2-leaf002", "zone2")]
    zone2 = summary(plan)["infiniband"]["zone2"]
    assert (zone2["design_endpoints"], zone2["future_switches"]) == (24, 1)
    # Installed today: the same subnet files as without the design capacity.
    assert fabric_tree(plan)["ibsim/zone2/fabric.net"] == fabric_tree(
        load_and_plan(TWO_ZONE)[1])["ibsim/zone2/fabric.net"]


def test_a_site_without_further_fabrics_has_only_compute() -> None:
    plan = load_and_plan(ROOT / "inventory" / "sites" / "lab")[1]
    assert plan.site.fabrics.infiniband == {}
    assert plan.ib_names() == ["compute"]
    assert "infiniband" not in summary(plan)
