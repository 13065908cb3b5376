"""Identification, inference and findings on edited net files of small planned fabrics.

The planned fabric's own ibsim net file is what an ideal capture would show; these tests edit
it (:class:`NetFile`) and parse it directly, without ibsim, to cover topologies the golden
captures do not: multi-plane, three tiers, scopes and unplanned cables.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.fabric.expected import Expected, expected_fabric, parse_scope
from provision.fabric.findings import VerifyResult
from provision.fabric.netedit import NetFile
from provision.fabric.topology import parse_ibnetdiscover
from provision.fabric.verify import verify
from provision.plan.build import Plan
from provision.plan.load import load_and_plan
from provision.render.ibsim import ibsim_net, synthetic_guids

ROOT = Path(__file__).resolve().parents[1]
FAT = ROOT / "tests" / "golden" / "ibnetdiscover" / "sites" / "fat" / "site.yaml"


def _variant(tmp: Path, name: str, compute: str, tiers: int = 2) -> Plan:
    """The fat fixture site with three racks and another compute fabric."""
    text = FAT.read_text().replace("name: fat\n", f"name: {name}\n")
    text = text.replace("racks: 1\n", "racks: 3\n").replace(
        "power_kw: 36", "power_kw: 60, pdus: 4, pdu: pdu-3ph-415v-63a-net")
    text = text.replace("power_capacity_kw: 60", "power_capacity_kw: 200")
    text = text.replace("network_racks: [a01]", "network_racks: [a02, a03]")
    text = text.replace("    topology: fat-tree\n", compute).replace("tiers: 2", f"tiers: {tiers}")
    path = tmp / name / "site.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return load_and_plan(path)[1]


@pytest.fixture(scope="module")
def fat() -> Plan:
    return load_and_plan(FAT)[1]


@pytest.fixture(scope="module")
def multiplane(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return _variant(tmp_path_factory.mktemp("mp"), "mp",
                    "    topology: multi-plane\n    planes: 8\n")


@pytest.fixture(scope="module")
def three_tier(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return _variant(tmp_path_factory.mktemp("t3"), "t3", "    topology: fat-tree\n", tiers=3)


def run(plan: Plan, edit: Callable[[NetFile], None] | None = None,
        scope: list[str] | None = None) -> VerifyResult:
    net = NetFile(ibsim_net(plan))
    if edit is not None:
        edit(net)
    exp: Expected = expected_fabric(plan)
    return verify(parse_ibnetdiscover(net.text()), exp, parse_scope(scope or [], exp))


def kinds(result: VerifyResult) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(f.kind, f.severity, f.cables) for f in result.findings]


@pytest.mark.parametrize("name", ["fat", "multiplane", "three_tier"])
def test_the_plan_verifies_against_itself(name: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(name)
    result = run(plan)
    assert result.ok and result.findings == []
    assert result.matched == result.planned_in_scope == len(plan.fabrics["compute"].links)
    assert result.guids == synthetic_guids(plan)


def test_host_nic_on_another_plane(multiplane: Plan) -> None:
    result = run(multiplane, lambda n: n.move(("lab-gpu-01 mlx5_0", 1), ("ib-p1-leaf001", 10)))
    assert kinds(result) == [("wrong-leaf", "error", ("IB:lab-gpu-01:mlx5_0",))]
    assert "is on ib-p1-leaf001[10] (a plane-1 leaf); planned ib-p0-leaf001[1]" \
        in result.findings[0].message


def test_three_tiers_are_inferred_leaf_to_core(three_tier: Plan) -> None:
    fab = three_tier.fabrics["compute"]
    assert {s.tier for s in fab.switches} == {"leaf", "spine", "core"}
    core_link = next(lk for lk in fab.links if lk.kind == "spine-core")
    other = next(lk for lk in fab.links if lk.kind == "spine-core" and lk.b == core_link.b
                 and lk.a_port != core_link.a_port)

    def edit(net: NetFile) -> None:
        for s in fab.switches:
            net.describe(s.name, "Quantum Mellanox Technologies")
        net.swap((core_link.b, int(core_link.b_port)), (other.b, int(other.b_port)))

    result = run(three_tier, edit)
    assert len(result.inferred) == len(fab.switches)
    assert kinds(result) == [("swapped", "error", tuple(sorted(
        [f"IB:{core_link.a}:{core_link.a_port}", f"IB:{other.a}:{other.a_port}"])))]
    guids = synthetic_guids(three_tier)
    assert all(info["guid"] == guids[name] for name, info in result.inferred.items())


def test_cable_between_unplanned_ports_is_unexpected(fat: Plan) -> None:
    result = run(fat, lambda n: n.connect(("ib-leaf002", 13), ("ib-leaf002", 14), "4xHDR"))
    assert kinds(result) == [("unexpected", "error", ())]
    assert result.findings[0].message == "unplanned cable ib-leaf002[13] - ib-leaf002[14]"


def test_faster_than_planned_is_a_wrong_speed(fat: Plan) -> None:
    result = run(fat, lambda n: n.set_rate(("lab-gpu-02 mlx5_7", 1), "4xNDR"))
    assert kinds(result) == [("wrong-speed", "error", ("IB:lab-gpu-02:mlx5_7",))]


def test_unknown_host_and_fqdn_descriptions(fat: Plan) -> None:
    def edit(net: NetFile) -> None:
        net.add_ca("lab-gpu-09 mlx5_0", ("ib-leaf002", 20))
        net.describe("lab-gpu-01 mlx5_3", "lab-gpu-01.fat.gpuctl.test mlx5_3")
        net.describe("ib-spine01", "MF0;ib-spine01:MQM8700/U1")

    result = run(fat, edit)
    assert kinds(result) == [("unknown-device", "error", ())]
    assert result.findings[0].message == \
        "unknown CA 'lab-gpu-09 mlx5_0' (no GUID) on ib-leaf002[20]"
    assert result.inferred == {}


def test_scope_by_host_leaves_the_rest_not_yet_present(fat: Plan) -> None:
    def edit(net: NetFile) -> None:
        for r in range(8):
            net.drop((f"lab-gpu-04 mlx5_{r}", 1))
        net.swap(("lab-gpu-03 mlx5_6", 1), ("lab-gpu-03 mlx5_7", 1))

    inside = run(fat, edit, ["host=lab-gpu-01,lab-gpu-02"])
    assert inside.ok and inside.planned_in_scope == 16 and inside.matched == 16
    assert sorted({(f.kind, f.severity) for f in inside.findings}) == \
        [("not-yet-present", "info"), ("swapped", "warning")]
    everything = run(fat, edit)
    assert not everything.ok
    assert sorted({(f.kind, f.severity) for f in everything.findings}) == \
        [("missing", "error"), ("swapped", "error")]


def test_scope_by_rack_covers_both_ends(fat: Plan) -> None:
    result = run(fat, lambda n: n.drop(("ib-leaf001", 21)), ["rack=a01"])
    assert kinds(result) == [("missing", "error", ("IB:ib-leaf001:21",))]


@pytest.mark.parametrize(("items", "reason"), [
    (["rack=zz"], "--scope rack='zz': no such rack in the compute fabric; known: a01"),
    (["su=1"], "this fabric has no scalable units"),
    (["host=nope"], "--scope host='nope': no such host"),
    (["pod=1"], "unknown scope 'pod'; use rack, su or host"),
    (["rack"], "expected KEY=VALUE[,VALUE...]"),
])
def test_bad_scopes_are_usage_errors(fat: Plan, items: list[str], reason: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_scope(items, expected_fabric(fat))
    assert reason in str(err.value)


def test_fabric_package_is_pure() -> None:
    forbidden = ("provision.execute", "provision.lab", "provision.cli", "subprocess", "socket")
    bad = []
    for path in sorted((ROOT / "provision" / "fabric").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            bad += [f"{path.name}: {n}" for n in names if n.startswith(forbidden)]
    assert bad == []


def test_planned_links_name_the_port_as_printed_on_the_chassis() -> None:
    """A crew reads OSFP4P2 on a DGX H100, the OS says mlx5_0: a planned link shows both."""
    from provision.fabric.findings import LinkView

    plan = load_and_plan(ROOT / "inventory" / "sites" / "superpod-h100-4su")[1]
    exp = expected_fabric(plan)
    by_cable = {pl.cable: pl for pl in exp.links.values()}
    pl = by_cable["IB:dgx-001:mlx5_0"]
    view = LinkView(pl.a[0], pl.a[1], pl.b[0], pl.b[1], pl.cable, pl.b_cage,
                    a_label=pl.a_label)
    assert view.text(True) == "dgx-001 mlx5_0 (OSFP4P2) - ib-su01-leaf01[1] (cage 1/1)"
    assert view.to_json()["a_label"] == "OSFP4P2"
    up = by_cable["IB:ib-su01-leaf01:34"]
    assert up.a_label == "17/2" and by_cable["IB:ufm:ib0"].a_label == ""
