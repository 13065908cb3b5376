"""Every device of every example site is placed, powered, addressed and cabled for management.

A device is a node, a switch of any fabric or an appliance (UFM). Placed: a rack of the site
and rack units inside it that no other device uses. Powered: its rack has PDUs and the rack's
power row counts it and its draw. Addressed: a management address (a node's BMC, or its boot
interface when it has no BMC; a switch's or appliance's mgmt0). Cabled: that management port
has a cable to an OOB switch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

import pytest

from provision.plan.build import Plan
from provision.plan.load import load_and_plan
from tests.conftest import EXAMPLE_SITES, SITES


@dataclass(frozen=True)
class Device:
    name: str
    rack: str
    u: int
    units: int
    max_kw: float
    mgmt_port: str
    mgmt_pool: str


@cache
def _plan(site: str) -> Plan:
    return load_and_plan(SITES / site)[1]


def devices(plan: Plan) -> list[Device]:
    cat = plan.catalog
    out = []
    for n in plan.nodes:
        t = cat.nodes[n.type]
        boot = next(g.boot_interface for g in plan.site.node_groups if g.name == n.group)
        out.append(Device(n.name, n.rack, n.u, n.rack_units, t.max_power_kw,
                          "bmc" if t.bmc else boot, "oob" if t.bmc else "inband"))
    for s in plan.switches:
        m = cat.switches[s.model]
        out.append(Device(s.name, s.rack, s.u, m.rack_units, m.max_power_kw, "mgmt0",
                          "switch_mgmt"))
    for a in plan.appliances:
        m = cat.appliances[a.model]
        out.append(Device(a.name, a.rack, a.u, m.rack_units, m.max_power_kw, "mgmt0",
                          "switch_mgmt"))
    return out


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_device_is_placed(site: str) -> None:
    plan = _plan(site)
    racks = {r.name: r for r in plan.racks}
    held: dict[tuple[str, int], str] = {}
    for d in devices(plan):
        assert d.rack in racks, f"{site}: {d.name} has no rack"
        assert d.u >= 1 and d.u + d.units - 1 <= racks[d.rack].size_u, \
            f"{site}: {d.name} at U{d.u} does not fit rack {d.rack}"
        for u in range(d.u, d.u + d.units):
            other = held.setdefault((d.rack, u), d.name)
            assert other == d.name, f"{site}: {d.name} and {other} share {d.rack} U{u}"


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_device_is_powered(site: str) -> None:
    plan = _plan(site)
    racks = {r.name: r for r in plan.racks}
    rows = {r.rack: r for r in plan.power.racks}
    count: Counter[str] = Counter()
    kw: dict[str, float] = {}
    for d in devices(plan):
        assert racks[d.rack].pdus > 0, f"{site}: {d.name} is in rack {d.rack}, which has no PDU"
        count[d.rack] += 1
        kw[d.rack] = kw.get(d.rack, 0.0) + d.max_kw
    for rack, n in count.items():
        row = rows[rack]
        assert row.nodes + row.switches + row.appliances == n, f"{site}: rack {rack}"
        assert row.nameplate_kw == pytest.approx(kw[rack], abs=1e-3), f"{site}: rack {rack}"


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_device_has_a_management_address(site: str) -> None:
    plan = _plan(site)
    for d in devices(plan):
        mine = [a for a in plan.addresses_of(d.name)
                if a.interface == d.mgmt_port and a.pool == d.mgmt_pool]
        assert len(mine) == 1, f"{site}: {d.name} has no {d.mgmt_pool} address on {d.mgmt_port}"
    seen = Counter(a.address for a in plan.addresses if a.pool in ("oob", "switch_mgmt"))
    assert not [a for a, n in seen.items() if n > 1], f"{site}: duplicate management address"


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_device_has_a_management_cable(site: str) -> None:
    plan = _plan(site)
    oob = {s.name: s for s in plan.switches if s.fabric == "oob"}
    by_end = {(c.a, c.a_port): c for c in plan.cables}
    for d in devices(plan):
        c = by_end.get((d.name, d.mgmt_port))
        assert c is not None, f"{site}: {d.name} {d.mgmt_port} is not cabled"
        if d.mgmt_pool == "inband":
            continue  # a node without a BMC is managed over its in-band boot port
        assert c.b in oob, f"{site}: {d.name} {d.mgmt_port} goes to {c.b}, not an OOB switch"
        assert oob[c.b].rack == c.b_rack and c.a_rack == d.rack, f"{site}: {c.id} racks"
    ends = Counter(e for c in plan.cables for e in ((c.a, c.a_port), (c.b, c.b_port)))
    assert not [e for e, n in ends.items() if n > 1], f"{site}: a port cabled twice"


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_rack_with_devices_has_its_own_oob_switch(site: str) -> None:
    """Network racks too: no management cable leaves its rack when the rack has an OOB ToR."""
    plan = _plan(site)
    with_tor = {s.rack for s in plan.switches if s.fabric == "oob" and s.tier == "tor"}
    assert {d.rack for d in devices(plan)} <= with_tor


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_aggregation_stays_in_the_hall_of_its_tors(site: str) -> None:
    """Each Ethernet aggregation block's ToRs are in one hall, and its switches are in that
    hall whenever the fabric has a network rack there."""
    plan = _plan(site)
    hall = {r.name: r.hall for r in plan.racks}
    by_name = {s.name: s for s in plan.switches}
    for fname in ("storage", "inband", "oob"):
        fab = plan.fabrics.get(fname)
        if fab is None:
            continue
        cfg = getattr(plan.site.fabrics, fname)
        net_halls = {hall[r] for r in cfg.network_racks if r in hall} | {
            ref.split("/")[0] for ref in cfg.network_racks if "/" in ref}
        below: dict[str, set[str]] = {}
        for lk in fab.links:
            if lk.kind == "tor-agg":
                below.setdefault(lk.b, set()).add(hall[by_name[lk.a].rack])
        for agg, halls in below.items():
            assert len(halls) == 1, f"{site}: {agg} aggregates ToRs of halls {sorted(halls)}"
            if halls <= net_halls:
                assert hall[by_name[agg].rack] in halls, f"{site}: {agg} is not in its hall"


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_redundant_pairs_are_in_two_racks(site: str) -> None:
    """The two switches of an aggregation or core pair are in different racks (failure
    domains) unless the fabric says pairs_in_one_rack."""
    plan = _plan(site)
    for fname in ("storage", "inband", "oob"):
        fab = plan.fabrics.get(fname)
        if fab is None or getattr(plan.site.fabrics, fname).pairs_in_one_rack:
            continue
        pairs: dict[tuple[str, int | None], list[str]] = {}
        for s in fab.switches:
            if s.tier != "tor":
                pairs.setdefault((s.tier, s.pod), []).append(s.rack)
        for key, racks in pairs.items():
            assert len(set(racks)) == len(racks), f"{site}: {fname} {key} pair in {racks}"


def test_cross_hall_runs_use_single_mode_fiber() -> None:
    """two-hall-storage: the halls are 120 m apart; every cable between them is single-mode
    fiber with a transceiver at each end that reaches the run."""
    plan = _plan("two-hall-storage")
    hall = {r.name: r.hall for r in plan.racks}
    cross = [c for c in plan.cables if hall[c.a_rack] != hall[c.b_rack]]
    assert cross, "no cable joins the halls"
    assert {c.kind for c in cross} == {"agg-core"}
    assert {c.fabric for c in cross} == {"storage", "inband", "oob"}
    for c in cross:
        assert c.medium == "fiber-sm" and c.run_m > 100, c
        for optic in (c.a_optic, c.b_optic):
            t = plan.catalog.transceivers[optic]
            assert t.fiber == "sm" and t.reach_m >= c.length_m >= c.run_m, c


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_device_is_fed_from_both_feeds(site: str) -> None:
    """Power as delivered: every rack with a device has PDUs on an A and a B feed, each feed
    alone carries the rack's nameplate (N+N), every PSU has an outlet of its type, and no
    device hangs off one feed."""
    plan = _plan(site)
    feeds = {f.rack: f for f in plan.power.feeds}
    kw: dict[str, float] = {}
    for d in devices(plan):
        kw[d.rack] = kw.get(d.rack, 0.0) + d.max_kw
    assert set(feeds) == set(kw), f"{site}: racks with devices and racks with feeds differ"
    for rack, f in feeds.items():
        spec = plan.catalog.pdus[f.model]
        assert {p.feed for p in f.pdus} == {"A", "B"}, f"{site}: {rack} feeds"
        assert sum(p.load_kw for p in f.pdus) == pytest.approx(kw[rack], abs=1e-2), rack
        assert f.load_kw <= f.one_feed_kw, f"{site}: {rack} {f.load_kw} kW on one feed"
        for p in f.pdus:
            assert p.c13 <= spec.outlets_c13 and p.c19 <= spec.outlets_c19, f"{site}: {p}"
        assert not f.one_feed, f"{site}: {rack}: {f.one_feed} on one feed"


def test_dgx_psus_fill_c19_outlets_on_both_feeds() -> None:
    """A DGX H200 has six C20-inlet PSUs: a rack of four takes 24 C19 outlets, 12 per feed."""
    plan = _plan("two-hall-storage")
    f = next(x for x in plan.power.feeds if x.rack == "a01")
    assert [(p.name, p.feed, p.c19) for p in f.pdus] == [("pdu-a01-a1", "A", 12),
                                                         ("pdu-a01-b1", "B", 12)]
    assert f.c19 == (24, 48)


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_every_pdu_is_addressed_and_cabled(site: str) -> None:
    """A rack's PDUs are devices too: each has an OOB address in its rack's subnet and its
    network port cabled to its rack's OOB switch."""
    plan = _plan(site)
    oob = {s.name: s for s in plan.switches if s.fabric == "oob"}
    by_end = {(c.a, c.a_port): c for c in plan.cables}
    subnets = {(s.pool, s.name): s.cidr for s in plan.subnets}
    pdus = [(f.rack, p.name) for f in plan.power.feeds for p in f.pdus]
    assert pdus, site
    for rack, name in pdus:
        [addr] = [a for a in plan.addresses_of(name) if a.interface == "mgmt0"]
        assert addr.pool == "oob" and addr.subnet == subnets[("oob", rack)], (site, name)
        c = by_end[(name, "mgmt0")]
        assert c.b in oob and oob[c.b].rack == rack == c.a_rack, (site, name)
