"""Property tests: random valid sites give consistent plans; growth never renumbers."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import netaddr
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.loader import load_catalog
from provision.models.catalog import Hca
from provision.models.site import Site
from provision.plan.build import Plan, build_plan
from tests.conftest import SITES

CATALOG = load_catalog()
# No built-in node type has XDR HCAs yet: a synthetic one (eight single-port ConnectX-8 at
# 800G) cables into Quantum-X800 Q3400 twin-port cages.
CATALOG.nodes["xdr-8"] = CATALOG.nodes["hgx-h100"].model_copy(update={
    "name": "xdr-8", "compute_hcas": [Hca(device=f"mlx5_{i}", speed="XDR") for i in range(8)]})
LAB = yaml.safe_load((SITES / "lab" / "site.yaml").read_text())


SPEEDS = {"qm8700": "HDR", "qm9700": "NDR", "q3400": "XDR"}


def make_site(topology: str, nodes: int, per_rack: int, rows: int, ntype: str,
              storage: bool, switch: str = "qm8700") -> dict[str, Any]:
    d = copy.deepcopy(LAB)
    racks_needed = -(-nodes // per_rack)
    if topology == "rail-optimized":  # each SU of 20 slots starts a rack: one part-rack each
        racks_needed += -(-(nodes + 1) // 20)
    per_row = -(-racks_needed // rows)
    units = CATALOG.nodes[ntype].rack_units
    d["halls"][0]["power_capacity_kw"] = 100000
    d["site"]["power_capacity_mw"] = 1000
    d["halls"][0]["rows"] = [
        {"name": f"r{i}", "racks": per_row, "y_m": i * 3,
         "rack": {"size_u": 48, "power_kw": 200, "cooling": "liquid"}} for i in range(rows)]
    net = 8 if switch == "q3400" else 4  # 4U Q3400s: the IB tiers take n03.., storage n01-n02
    d["halls"][0]["rows"].append({"name": "n", "racks": net, "y_m": rows * 3,
                                  "rack": {"size_u": 48, "power_kw": 400, "cooling": "liquid"}})
    g = d["node_groups"][0]
    g["type"], g["count"] = ntype, nodes
    g["placement"] = {"hall": "h1", "rows": [f"r{i}" for i in range(rows)],
                      "nodes_per_rack": per_rack,
                      "u_positions": [2 + i * units for i in range(per_rack)]}
    hcas = len(CATALOG.nodes[ntype].compute_hcas)
    cf = {"topology": topology, "switch": switch, "speed": SPEEDS[switch], "node_groups": ["gpu"],
          "tiers": "auto", "network_racks": ["n01", "n02", "n03", "n04"] if net == 4
          else [f"n{i:02d}" for i in range(3, net + 1)]}
    if topology == "rail-optimized":
        cf["su_size"] = 20
        cf["ufm_ports"] = 4
    if topology == "multi-plane":
        cf["planes"] = hcas
    d["fabrics"]["compute"] = cf
    # two OOB switches per rack: a network rack's switches and PDUs outgrow one 48-port one
    d["fabrics"]["oob"]["per_rack"] = 2
    d["addressing"] = {"inband": "10.16.0.0/14", "oob": "10.20.0.0/14",
                       "storage": "10.24.0.0/13", "switch_mgmt": "10.4.0.0/20",
                       "ipoib": ["10.8.0.0/14"], "pod_cidr": "172.16.0.0/14",
                       "service_cidr": "172.20.0.0/16",
                       "capacity": {"rows_per_hall": 8, "racks_per_row": 128}}
    if storage:
        d["fabrics"]["storage"] = {"switch": "sn4600c", "spine_switch": "sn4600c",
                                   "network_racks": ["n01", "n02"]}
    return d


def plan_of(d: dict[str, Any]) -> Plan:
    return build_plan(Site.model_validate(d), CATALOG)


sites = st.builds(
    make_site,
    topology=st.sampled_from(["fat-tree", "rail-optimized", "multi-plane"]),
    nodes=st.integers(1, 60),
    per_rack=st.integers(1, 4),
    rows=st.integers(1, 3),
    ntype=st.sampled_from(["dgx-a100", "pcie-a100-1hca"]),
    storage=st.booleans(),
)

twin_port_sites = st.builds(
    make_site,
    topology=st.sampled_from(["fat-tree", "rail-optimized", "multi-plane"]),
    nodes=st.integers(1, 70),
    per_rack=st.integers(1, 4),
    rows=st.integers(1, 3),
    ntype=st.sampled_from(["dgx-h100", "dgx-h200", "hgx-h100", "dgx-b200"]),
    storage=st.booleans(),
    switch=st.just("qm9700"),
)

xdr_sites = st.builds(
    make_site,
    topology=st.sampled_from(["fat-tree", "rail-optimized", "multi-plane"]),
    nodes=st.integers(1, 70),
    per_rack=st.integers(1, 4),
    rows=st.integers(1, 3),
    ntype=st.just("xdr-8"),
    storage=st.booleans(),
    switch=st.just("q3400"),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites)
def test_plan_invariants(d: dict[str, Any]) -> None:
    plan = plan_of(d)
    # every HCA port has exactly one link
    hca_links = Counter((lk.a, lk.a_port) for lk in plan.fabrics["compute"].links
                        if lk.kind == "node-leaf")
    for n in plan.nodes:
        for h in CATALOG.nodes[n.type].compute_hcas:
            assert hca_links[(n.name, h.device)] == 1
    assert sum(hca_links.values()) == len(hca_links)
    # no switch port used twice; port numbers within the model's radix
    radix = {s.name: CATALOG.switches[s.model].ports for s in plan.switches}
    used: Counter[tuple[str, str]] = Counter()
    for f in plan.fabrics.values():
        for lk in f.links:
            used[(lk.b, lk.b_port)] += 1
            if lk.a in radix:
                used[(lk.a, lk.a_port)] += 1
    assert max(used.values()) == 1
    for (dev, port), _ in used.items():  # mgmt0: the dedicated management port
        assert port == "mgmt0" or 1 <= int(port) <= radix[dev], (dev, port)
    # addresses unique and inside their pools
    pools = {"inband": ["10.16.0.0/14"], "oob": ["10.20.0.0/14"], "storage": ["10.24.0.0/13"],
             "switch_mgmt": ["10.4.0.0/20"], "ipoib": ["10.8.0.0/14"]}
    seen = Counter(a.address for a in plan.addresses)
    assert max(seen.values()) == 1
    for a in plan.addresses:
        ip = netaddr.IPAddress(a.address)
        assert any(ip in netaddr.IPNetwork(p) for p in pools[a.pool])
        assert ip in netaddr.IPNetwork(a.subnet)
        assert ip != netaddr.IPNetwork(a.subnet).network
    # cable IDs unique; every link has a cable
    ids = [c.id for c in plan.cables]
    assert len(ids) == len(set(ids)) == sum(len(f.links) for f in plan.fabrics.values())


def _node_facts(plan: Plan) -> dict[str, Any]:
    node_names = {n.name for n in plan.nodes}
    return {
        "addresses": {(a.device, a.interface): a.address for a in plan.addresses
                      if a.device in node_names},
        "ports": {(lk.a, lk.a_port): (lk.b, lk.b_port) for f in plan.fabrics.values()
                  for lk in f.links if lk.a in node_names},
        "cables": {c.id: (c.a, c.a_port, c.b, c.b_port) for c in plan.cables
                   if c.a in node_names},
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites, st.integers(1, 40), st.sampled_from(["nodes", "row"]))
def test_growth_at_the_end_never_renumbers_existing_nodes(d: dict[str, Any], more: int,
                                                          how: str) -> None:
    before = plan_of(d)
    grown = copy.deepcopy(d)
    g = grown["node_groups"][0]
    g["count"] += more
    rows = grown["halls"][0]["rows"]
    if how == "row":
        rows.insert(len(rows) - 1, {**copy.deepcopy(rows[0]), "name": "grow", "y_m": 50,
                                    "racks": -(-more // g["placement"]["nodes_per_rack"])})
        g["placement"]["rows"].append("grow")
    else:
        rows[-2]["racks"] += -(-more // g["placement"]["nodes_per_rack"])  # last node row
    after = plan_of(grown)
    old, new = _node_facts(before), _node_facts(after)
    for key in ("addresses", "ports", "cables"):
        for k, v in old[key].items():
            assert new[key].get(k) == v, (key, k, v, new[key].get(k))


def _cages(plan: Plan) -> Any:
    """A function giving the physical cage of a port, worked out from the catalog (not from
    the plan's labels)."""
    node_type = {n.name: n.type for n in plan.nodes}
    width = {s.name: CATALOG.switches[s.model].ports_per_cage for s in plan.switches}
    hcas = {t: {h.device: h.cage for h in CATALOG.nodes[t].compute_hcas}
            for t in set(node_type.values())}

    def cage(device: str, port: str) -> str:
        t = node_type.get(device)
        if t is not None:
            c = hcas[t].get(port)
            return str(c) if c is not None else port
        if device not in width or not port.isdigit():  # an appliance; a named port (mgmt0)
            return port
        return str((int(port) - 1) // width[device] + 1)
    return cage


def check_physical_cabling(plan: Plan) -> None:
    """The cabling a crew can build: one medium and one module per cage, copper only cage to
    cage (or a declared splitter from one cage to single-port ends), physical things counted
    once, node optics as the node type's cages say."""
    media: dict[tuple[str, str], set[str]] = {}
    optics: dict[tuple[str, str], set[str]] = {}
    labels: dict[tuple[str, str], set[str]] = {}
    per_label: dict[str, list[Any]] = {}
    cage_of = _cages(plan)
    for c in plan.cables:
        ends = ((c.a, cage_of(c.a, c.a_port), c.a_optic),
                (c.b, cage_of(c.b, c.b_port), c.b_optic))
        for dev, cage, optic in ends:
            media.setdefault((dev, cage), set()).add(c.medium)
            optics.setdefault((dev, cage), set()).add(optic)
            labels.setdefault((dev, cage), set()).add(c.cable)
        per_label.setdefault(c.cable, []).append((c, ends))
        if c.medium.startswith("fiber"):
            assert c.a_optic and c.b_optic and c.cable == c.id, c
        else:
            assert not c.a_optic and not c.b_optic, c
    width = {s.name: CATALOG.switches[s.model].ports_per_cage for s in plan.switches}
    for cage, m in media.items():
        assert len(m) == 1, (cage, m)  # no cage holds two media
        assert len(optics[cage]) == 1, (cage, optics[cage])  # one module per cage
        (sku,) = optics[cage]
        if sku and cage[0] in width:  # a switch cage's module carries all its ports
            assert CATALOG.transceivers[sku].ports == width[cage[0]], (cage, sku)
    copper = {"dac", "acc", "aoc"}
    for label, rows in per_label.items():
        ends0, medium = rows[0][1], rows[0][0].medium
        legs = CATALOG.cables[rows[0][0].sku].legs
        if legs > 1:  # a declared splitter: one switch cage to single-port ends, one each
            assert len({(e[1][0], e[1][1]) for _, e in rows}) == 1, label
            a_ends = [(e[0][0], e[0][1]) for _, e in rows]
            assert len(set(a_ends)) == len(a_ends) <= legs, (label, a_ends)
            for c, _ in rows:
                assert c.a_port == cage_of(c.a, c.a_port), (label, c.a, c.a_port)
            for dev, cage in [*a_ends, (ends0[1][0], ends0[1][1])]:
                assert labels[(dev, cage)] == {label}, (label, dev, cage)
            continue
        peers = {(e[0][0], e[0][1], e[1][0], e[1][1]) for _, e in rows}
        assert len(peers) == 1, (label, peers)  # one cable joins one cage to one peer cage
        if medium in copper:
            for dev, cage, _ in ends0:  # and carries every link of both cages
                assert labels[(dev, cage)] == {label}, (label, dev, cage)
        else:
            assert len(rows) == 1, label
    # the BOM counts physical cables and one module per cage that carries fiber
    bom = {(b.category, b.sku): b for b in plan.bom}
    by_sku: Counter[str] = Counter()
    for o in optics.values():
        (sku,) = o
        if sku:
            by_sku[sku] += 1
    assert {k[1]: b.quantity for k, b in bom.items() if k[0] == "transceiver"} == dict(by_sku)
    cables = Counter(f"{c.sku}-{c.length_m:g}m" for c in {c.cable: c for c in plan.cables}
                     .values())
    assert {k[1]: b.quantity for k, b in bom.items() if k[0] == "cable"} == dict(cables)
    assert sum(b.links for k, b in bom.items() if k[0] == "cable") == len(plan.cables)
    # node-side optics follow the node type: one module per cage it carries fiber in
    fiber: dict[str, set[str]] = {}
    for c in plan.cables:
        if c.fabric == "compute" and c.a_optic:
            fiber.setdefault(c.a, set()).add(c.a_port)
    node_optics: dict[str, dict[str, str]] = {}
    for (dev, cage), o in optics.items():
        if o != {""}:
            node_optics.setdefault(dev, {})[cage] = next(iter(o))
    for n in plan.nodes:
        t = CATALOG.nodes[n.type]
        ports = fiber.get(n.name, set())
        want = {str(h.cage) if h.cage is not None else h.device for h in t.compute_hcas
                if h.device in ports}
        mine = node_optics.get(n.name, {})
        have = {cage for cage in mine if cage in want | ports}
        assert have == want, (n.name, have, want)
        for cage in want:
            shared = sum(1 for h in t.compute_hcas if str(h.cage) == cage)
            assert CATALOG.transceivers[mine[cage]].ports == max(1, shared), (n.name, cage)


def check_su_racks(plan: Plan) -> None:
    """No rack holds nodes of two scalable units; SU 1 keeps the UFM's slot empty."""
    su_of = {s.name: s.su for s in plan.switches if s.su is not None}
    rack_of = {n.name: n.rack for n in plan.nodes}
    sus: dict[str, set[int]] = {}
    for lk in plan.node_fabric_links():
        su = su_of.get(lk.b)
        if su is not None:
            sus.setdefault(rack_of[lk.a], set()).add(su)
    assert all(len(v) == 1 for v in sus.values()), sus
    ufm_ports = {lk.b_port for lk in plan.fabrics["compute"].links if lk.kind == "ufm-leaf"}
    for lk in plan.node_fabric_links():  # no node shares the UFM's leaf ports
        assert not (su_of.get(lk.b) == 1 and lk.b_port in ufm_ports), lk


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(sites, twin_port_sites, xdr_sites))
def test_physical_cabling_invariants(d: dict[str, Any]) -> None:
    plan = plan_of(d)
    check_physical_cabling(plan)
    check_su_racks(plan)


def test_example_sites_cable_physically() -> None:
    from provision.plan.load import load_and_plan
    from tests.conftest import EXAMPLE_SITES

    for site in EXAMPLE_SITES:
        plan = load_and_plan(SITES / site)[1]
        check_physical_cabling(plan)
        check_su_racks(plan)


def test_twin_port_leaf_cages_go_to_one_spine() -> None:
    """With >= 2 links per leaf-spine pair, both ports of a leaf cage reach one spine cage."""
    plan = plan_of(make_site("rail-optimized", 60, 4, 2, "dgx-h100", False, "qm9700"))
    check_physical_cabling(plan)
    ups = [c for c in plan.cables if c.kind == "leaf-spine"]
    assert ups
    cage_peer: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for c in ups:
        cage_peer.setdefault((c.a, c.a_cage.split("/")[0]), set()).add(
            (c.b, c.b_cage.split("/")[0]))
    assert all(len(v) == 1 for v in cage_peer.values())


def test_superpod_grown_by_an_su_still_cables_physically() -> None:
    """The SuperPOD grown from 4 to 5 SUs (and by one node too many): still one medium per
    cage, twin-port cables cage to cage, SUs on rack boundaries."""
    base = yaml.safe_load((SITES / "superpod-h100-4su" / "site.yaml").read_text())
    for count, racks in ((159, 24), (128, 17)):
        d = copy.deepcopy(base)
        d["node_groups"][0]["count"] = count
        rows = d["halls"][0]["rows"]
        next(r for r in rows if r["name"] == "b")["racks"] = racks
        plan = plan_of(d)
        check_physical_cabling(plan)
        check_su_racks(plan)
        assert len(plan.fabrics["compute"].units) == 5


def test_sus_of_a_further_fabric_start_on_rack_boundaries() -> None:
    """zone2 of the two-zone site as a rail-optimized fabric of 3-node SUs: 8 nodes at 8 per
    rack would share a rack across SUs; each SU starts a rack instead."""
    d = yaml.safe_load((SITES.parent.parent / "tests/sites/two-zone/site.yaml").read_text())
    z2 = d["fabrics"]["infiniband"]["zone2"]
    z2.update({"topology": "rail-optimized", "su_size": 3, "ufm_ports": 0})
    z2.pop("tiers")
    d["halls"][0]["rows"][0]["racks"] += 2
    plan = plan_of(d)
    su_of = {s.name: s.su for s in plan.fabrics["zone2"].switches if s.su is not None}
    rack_of = {n.name: n.rack for n in plan.nodes}
    sus: dict[str, set[int]] = {}
    for lk in plan.fabrics["zone2"].links:
        if lk.kind == "node-leaf":
            sus.setdefault(rack_of[lk.a], set()).add(su_of[lk.b])
    assert len(sus) == 3 and all(len(v) == 1 for v in sus.values()), sus
