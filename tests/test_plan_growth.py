"""Growth property test: a site grown anywhere (a rack, a row, a hall; in the middle or at
the end) keeps every existing address, rack position, port and cable end."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.loader import load_catalog
from provision.models.site import Site
from provision.plan.build import Plan, build_plan

CATALOG = load_catalog()

NODE_RACK = {"size_u": 48, "power_kw": 200, "cooling": "liquid"}
NET_RACK = {"size_u": 48, "power_kw": 400, "cooling": "air"}


def _group(name: str, ntype: str, count: int, hall: str, rows: list[str],
           per_rack: int) -> dict[str, Any]:
    units = CATALOG.nodes[ntype].rack_units
    return {"name": name, "type": ntype, "count": count, "role": "gpu",
            "placement": {"hall": hall, "rows": rows, "nodes_per_rack": per_rack,
                          "u_positions": [2 + i * units for i in range(per_rack)]}}


def base_site(topology: str, gpus: int, per_rack: int, storage: int) -> dict[str, Any]:
    """Hall h1: GPU rows + a network row; hall h2: storage servers (Ethernet only).

    The floor grid is 8 rows of 8 racks per hall: one hall's ToR positions fill exactly one
    64-port aggregation block, the sizing README "Planning for growth" recommends."""
    gpu_racks = -(-gpus // per_rack) + 1  # room for SUs starting on a rack boundary
    st_racks = -(-storage // 8)
    cf: dict[str, Any] = {"topology": topology, "switch": "qm8700", "speed": "HDR",
                          "node_groups": ["gpu"], "tiers": 2,
                          "network_racks": ["n01", "n02", "n03", "n04"]}
    if topology == "rail-optimized":
        cf["su_size"] = 20
        cf["ufm_ports"] = 4
    eth = {"spine_switch": "sn4600c", "network_racks": ["n01", "n02", "n03", "n04"]}
    return {
        "site": {"name": "grow", "location": "test", "climate": "temperate",
                 "power_capacity_mw": 1000, "pue_target": 1.3,
                 "electricity_price_per_kwh": 0.1, "domain": "grow.example.internal"},
        "halls": [
            {"name": "h1", "power_capacity_kw": 100000, "rows": [
                {"name": "a", "racks": gpu_racks, "y_m": 0, "rack": NODE_RACK},
                {"name": "n", "racks": 4, "y_m": 3, "rack": NET_RACK}]},
            {"name": "h2", "power_capacity_kw": 100000, "x_m": 20, "rows": [
                {"name": "s", "racks": st_racks, "y_m": 0, "rack": NODE_RACK}]},
        ],
        "node_groups": [
            _group("gpu", "dgx-a100", gpus, "h1", ["a"], per_rack),
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


def grow(d: dict[str, Any], op: str, n: int) -> None:
    """Apply one growth step of size ``n`` to the site dict ``d`` in place."""
    if op == "storage-rack":                 # more servers in the last storage row (middle hall)
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


def plan_of(d: dict[str, Any]) -> Plan:
    return build_plan(Site.model_validate(d), CATALOG)


def facts(plan: Plan) -> dict[str, dict[Any, Any]]:
    """Everything a crew has built and labelled, keyed by what identifies it."""
    links = [lk for f in plan.fabrics.values() for lk in f.links]
    return {
        "address": {(a.pool, a.device, a.interface): (a.address, a.subnet, a.gateway)
                    for a in plan.addresses},
        "node position": {n.name: (n.rack, n.u) for n in plan.nodes},
        "switch position": {s.name: (s.model, s.rack, s.u) for s in plan.switches},
        "port (lower end)": {(lk.a, lk.a_port): (lk.b, lk.b_port) for lk in links},
        "port (upper end)": {(lk.b, lk.b_port): (lk.a, lk.a_port) for lk in links},
        "cable": {c.id: (c.a, c.a_port, c.b, c.b_port) for c in plan.cables},
    }


def assert_nothing_moved(before: Plan, after: Plan) -> None:
    old, new = facts(before), facts(after)
    for what, items in old.items():
        moved = [(k, v, new[what].get(k)) for k, v in items.items() if new[what].get(k) != v]
        assert not moved, f"{len(moved)} {what} changed, first: {moved[:3]}"


OPS = st.sampled_from(["storage-rack", "storage-row", "hall-1-row", "hall"])


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
        grow(grown, op, n)
        after = plan_of(grown)
        assert len(after.nodes) == len(before.nodes) + n
        assert_nothing_moved(before, after)
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
