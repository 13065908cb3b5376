"""Growth property test: a site grown anywhere (a rack, a row, an SU, a hall; in the middle or
at the end) within its design capacity keeps every existing address, rack position, port and
cable end, and a future switch is installed where the plan reserved it."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import netaddr
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.cli.main import cli
from provision.loader import load_catalog
from provision.models.site import Site
from provision.plan.build import Plan, build_plan
from provision.render.plan_files import cabling_csv
from tests.conftest import SITES

CATALOG = load_catalog()

DESIGN_NODES = 40
"""Design capacity of the test sites' compute fabric (fat tree: 40 nodes x 8 HCAs)."""

NODE_RACK = {"size_u": 48, "power_kw": 200, "cooling": "liquid"}
NET_RACK = {"size_u": 48, "power_kw": 400, "cooling": "air"}


def _group(name: str, ntype: str, count: int, hall: str, rows: list[str],
           per_rack: int) -> dict[str, Any]:
    units = CATALOG.nodes[ntype].rack_units
    return {"name": name, "type": ntype, "count": count, "role": "gpu",
            "placement": {"hall": hall, "rows": rows, "nodes_per_rack": per_rack,
                          "u_positions": [2 + i * units for i in range(per_rack)]}}


def base_site(topology: str, gpus: int, per_rack: int, storage: int) -> dict[str, Any]:
    """Hall h1: two GPU rows laid out for the compute fabric's design capacity (2 SUs or 40
    nodes) + a network row; hall h2: storage servers (Ethernet only).

    The floor grid is 8 rows of 8 racks per hall: one hall's ToR positions fill exactly one
    64-port aggregation block, the sizing README "Planning for growth" recommends."""
    st_racks = -(-storage // 8)
    cf: dict[str, Any] = {"topology": topology, "switch": "qm8700", "speed": "HDR",
                          "node_groups": ["gpu"], "tiers": 2,
                          "network_racks": ["n01", "n02", "n03", "n04"],
                          "design": {"endpoints": DESIGN_NODES * 8}}
    if topology == "rail-optimized":
        cf["su_size"] = 20
        cf["ufm_ports"] = 4
        cf["design"] = {"sus": 2}
    eth = {"spine_switch": "sn4600c", "network_racks": ["n01", "n02", "n03", "n04"]}
    return {
        "site": {"name": "grow", "location": "test", "climate": "temperate",
                 "power_capacity_mw": 1000, "pue_target": 1.3,
                 "electricity_price_per_kwh": 0.1, "domain": "grow.example.internal"},
        "halls": [
            {"name": "h1", "power_capacity_kw": 100000, "rows": [
                {"name": "a", "racks": 8, "y_m": 0, "rack": NODE_RACK},
                {"name": "b", "racks": 8, "y_m": 3, "rack": NODE_RACK},
                {"name": "n", "racks": 4, "y_m": 6, "rack": NET_RACK}]},
            {"name": "h2", "power_capacity_kw": 100000, "x_m": 20, "rows": [
                {"name": "s", "racks": st_racks, "y_m": 0, "rack": NODE_RACK}]},
        ],
        "node_groups": [
            _group("gpu", "dgx-a100", gpus, "h1", ["a", "b"], per_rack),
            _group("st", "storage-2u-nvme", storage, "h2", ["s"], 8),
        ],
        "fabrics": {"compute": cf,
                    "storage": {"switch": "sn4600c", **eth},
                    "inband": {"switch": "sn4600c", **eth},
                    "oob": {"switch": "mgmt-1g-48", **eth}},
        "addressing": {"inband": "10.0.0.0/15", "oob": "10.2.0.0/15", "storage": "10.4.0.0/14",
                       "switch_mgmt": "10.9.0.0/20", "ipoib": ["10.12.0.0/14"],
                       "pod_cidr": "172.16.0.0/14", "service_cidr": "172.20.0.0/16",
                       "capacity": {"rows_per_hall": 8, "racks_per_row": 8}},
        "software": {"os": "ubuntu-24.04", "driver_branch": 580, "driver_version": "580.95.05",
                     "cuda": "13.0", "nccl": "2.28.3", "doca_ofed": "3.1.0", "dcgm": "4.4.1"},
        "burnin": {"profile": "a100-hdr"},
    }


def _row(d: dict[str, Any], hall: str, name: str) -> dict[str, Any]:
    h = next(h for h in d["halls"] if h["name"] == hall)
    return next(r for r in h["rows"] if r["name"] == name)


def _group_of(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in d["node_groups"] if g["name"] == name)


def grow(d: dict[str, Any], op: str, n: int) -> int:
    """Apply one growth step of up to ``n`` nodes to the site dict ``d`` in place; returns
    how many nodes it added."""
    if op == "gpu":                          # more GPU nodes: fills SUs, opens the next one
        g = _group_of(d, "gpu")
        cap = 39 if d["fabrics"]["compute"]["topology"] == "rail-optimized" else DESIGN_NODES
        n = min(n, cap - g["count"])
        g["count"] += n
    elif op == "storage-rack":                 # more servers in the last storage row (middle hall)
        g = _group_of(d, "st")
        g["count"] += n
        _row(d, "h2", g["placement"]["rows"][-1])["racks"] += -(-n // 8)
    elif op == "storage-row":                # a new row in hall h2, appended to the group
        g = _group_of(d, "st")
        hall = next(h for h in d["halls"] if h["name"] == "h2")
        name = f"s{len(hall['rows'])}"
        hall["rows"].append({"name": name, "racks": -(-n // 8), "y_m": 3 * len(hall["rows"]),
                             "rack": NODE_RACK})
        g["placement"]["rows"].append(name)
        g["count"] += n
    elif op == "hall-1-row":                 # a row of new servers in h1 (h2 comes after it)
        hall = d["halls"][0]
        name = f"x{len(hall['rows'])}"
        hall["rows"].append({"name": name, "racks": -(-n // 4), "y_m": 30 + 3 * len(hall["rows"]),
                             "rack": NODE_RACK})
        d["node_groups"].append(_group(f"svc{len(d['node_groups'])}", "pcie-a100-1hca", n,
                                       "h1", [name], 4))
    elif op == "hall":                       # a new hall at the end
        name = f"h{len(d['halls']) + 1}"
        d["halls"].append({"name": name, "power_capacity_kw": 100000,
                           "x_m": 20 * len(d["halls"]),
                           "rows": [{"name": "a", "racks": -(-n // 4), "y_m": 0,
                                     "rack": NODE_RACK,
                                     "rack_names": "{hall}{row}{index:02d}"}]})
        d["node_groups"].append(_group(f"cpu{len(d['node_groups'])}", "pcie-a100-1hca", n,
                                       name, ["a"], 4))
    else:
        raise AssertionError(op)
    return n


def plan_of(d: dict[str, Any]) -> Plan:
    return build_plan(Site.model_validate(d), CATALOG)


def facts(plan: Plan) -> dict[str, dict[Any, Any]]:
    """Everything a crew has built and labelled, keyed by what identifies it."""
    links = [lk for f in plan.fabrics.values() for lk in f.links]
    return {
        "address": {(a.pool, a.device, a.interface): (a.address, a.subnet, a.gateway)
                    for a in plan.addresses},
        "node position": {n.name: (n.rack, n.u) for n in plan.nodes},
        "switch position": {s.name: (s.model, s.rack, s.u)
                            for s in plan.switches + plan.future_switches},
        "port (lower end)": {(lk.a, lk.a_port): (lk.b, lk.b_port) for lk in links},
        "port (upper end)": {(lk.b, lk.b_port): (lk.a, lk.a_port) for lk in links},
        "cable": {c.id: (c.a, c.a_port, c.b, c.b_port, c.medium, c.cable)
                  for c in plan.cables + plan.future_cables},
    }


def assert_nothing_moved(before: Plan, after: Plan) -> None:
    old, new = facts(before), facts(after)
    for what, items in old.items():
        moved = [(k, v, new[what].get(k)) for k, v in items.items() if new[what].get(k) != v]
        assert not moved, f"{len(moved)} {what} changed, first: {moved[:3]}"


OPS = st.sampled_from(["gpu", "storage-rack", "storage-row", "hall-1-row", "hall"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topology=st.sampled_from(["fat-tree", "rail-optimized"]), gpus=st.integers(1, 16),
       per_rack=st.integers(3, 4), storage=st.integers(1, 16),
       steps=st.lists(st.tuples(OPS, st.integers(1, 16)), min_size=1, max_size=3))
def test_growth_anywhere_moves_nothing_built(topology: str, gpus: int, per_rack: int,
                                             storage: int, steps: list[tuple[str, int]]) -> None:
    d = base_site(topology, gpus, per_rack, storage)
    before = plan_of(d)
    for op, n in steps:
        grown = copy.deepcopy(d)
        added = grow(grown, op, n)
        after = plan_of(grown)
        assert len(after.nodes) == len(before.nodes) + added
        assert_nothing_moved(before, after)
        built = {s.name for s in after.switches}
        assert not built & {s.name for s in after.future_switches}
        d, before = grown, after


def test_a_row_added_to_hall_1_keeps_hall_2_addresses() -> None:
    """The issue's case: hall 2's storage servers keep their addresses when hall 1 grows."""
    d = base_site("fat-tree", 8, 4, 16)
    before = plan_of(d)
    grown = copy.deepcopy(d)
    grow(grown, "hall-1-row", 12)
    after = plan_of(grown)
    servers = {n.name for n in before.nodes if n.group == "st"}
    st_old = {(a.device, a.interface): a.address for a in before.addresses
              if a.device in servers}
    st_new = {(a.device, a.interface): a.address for a in after.addresses
              if a.device in servers}
    assert len(st_old) == 16 * 4  # 16 servers: BMC, boot port, two storage ports
    assert {k: st_new[k] for k in st_old} == st_old


def test_design_capacity_plans_the_final_upper_tiers_and_marks_the_rest_future() -> None:
    d = base_site("rail-optimized", 10, 4, 4)            # SU 1 of a 2-SU design
    full = copy.deepcopy(d)
    _group_of(full, "gpu")["count"] = 39
    del full["fabrics"]["compute"]["design"]
    plan, final = plan_of(d), plan_of(full)
    spines = {s.name for s in final.switches if s.tier == "spine"}
    assert {s.name for s in plan.switches if s.tier == "spine"} == spines
    assert [s.name for s in plan.switches if s.tier == "leaf"] == \
        [f"ib-su01-leaf{r:02d}" for r in range(1, 9)]
    assert [s.name for s in plan.future_switches] == [f"ib-su02-leaf{r:02d}" for r in range(1, 9)]
    # future leaf-spine links and the future leaves' management cables, cabled in reserve
    assert {c.kind for c in plan.future_cables} == {"leaf-spine", "mgmt"}
    assert all(c.a in {s.name for s in plan.future_switches} for c in plan.future_cables)
    rows = cabling_csv(plan).splitlines()
    assert rows[0].endswith(",status")
    assert sum(r.endswith(",future") for r in rows) == len(plan.future_cables)
    bom = {(b.category, b.sku): b.quantity for b in plan.bom}
    assert bom[("future switch", "qm8700")] == 8
    # the future switches hold no address record yet, but their place in the pool is kept
    assert not {a.device for a in plan.addresses} & {s.name for s in plan.future_switches}


def test_growth_past_design_capacity_is_a_warning(tmp_path: Path) -> None:
    text = (SITES / "superpod-h100-4su" / "site.yaml").read_text()
    assert "    ufm_ports: 4\n" in text
    runner = CliRunner()
    for sus, past in ((4, False), (3, True)):
        path = tmp_path / f"design{sus}" / "site.yaml"
        path.parent.mkdir()
        path.write_text(text.replace("    ufm_ports: 4\n",
                                     f"    ufm_ports: 4\n    design: {{sus: {sus}}}\n"))
        res = runner.invoke(cli, ["lint", str(path)])
        assert res.exit_code == 0, res.output
        assert ("GPU150" in res.output) is past, res.output
        if past:
            assert re.search(r"GPU150 warning: compute fabric: 127 nodes exceed its design "
                             r"capacity of 3 SUs \(95 nodes\)", res.output)
            assert runner.invoke(cli, ["lint", str(path), "--strict"]).exit_code == 1


def test_design_capacity_without_its_racks_is_a_warning(tmp_path: Path) -> None:
    """SuperPOD rows hold 4 SUs; a design of 5 leaves SU 5's leaves without racks."""
    text = (SITES / "superpod-h100-4su" / "site.yaml").read_text()
    path = tmp_path / "site.yaml"
    path.write_text(text.replace("count: 127", "count: 96").replace(
        "    ufm_ports: 4\n", "    ufm_ports: 4\n    design: {sus: 5}\n"))
    res = CliRunner().invoke(cli, ["lint", str(path)])
    assert res.exit_code == 0, res.output
    assert re.search(r"GPU154 warning: compute fabric: the rows of node group dgx do not hold "
                     r"its design capacity \(159 nodes, 96 declared\)", res.output), res.output
    assert "GPU150" not in res.output


def test_rack_subnets_keep_a_dynamic_tail_for_machines_not_in_the_plan() -> None:
    """Every oob/inband rack subnet ends in at least ``capacity.dhcp_free`` addresses that no
    position holds (Kea's dynamic pool), whatever the rack holds."""
    for per_rack in (1, 4):
        plan = plan_of(base_site("fat-tree", 12, per_rack, 16))
        free = plan.site.addressing.capacity.dhcp_free
        subnets = [s for s in plan.subnets if s.pool in ("oob", "inband")]
        assert subnets
        held = {a.address for a in plan.addresses}
        for s in subnets:
            net = netaddr.IPNetwork(s.cidr)
            first_free = int(netaddr.IPAddress(s.first_host)) + s.capacity
            tail = [str(netaddr.IPAddress(i)) for i in range(first_free, int(net.last))]
            assert len(tail) >= free, s
            assert not held & set(tail), s
