"""Power and cooling: IT load per rack / row / hall / site, facility power, energy and cost,
and each rack's A/B feeds and PDUs (plan.feeds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from provision.models.catalog import Catalog
from provision.models.site import Site
from provision.plan.fabric import Switch
from provision.plan.feeds import RackFeeds, plan_feeds
from provision.plan.layout import Node, Rack
from provision.plan.racking import Appliance

COOLING_LIMIT_KW = {"air": 40.0, "hybrid": 60.0, "liquid": 140.0}
"""Densest rack each cooling type carries (shared/reference/fabrics.md, Facility)."""

HOURS_PER_YEAR = 8760


@dataclass(frozen=True, slots=True)
class RackPower:
    rack: str
    hall: str
    row: str
    budget_kw: float
    cooling: str
    cooling_limit_kw: float
    nameplate_kw: float
    expected_kw: float
    headroom_kw: float
    nodes: int
    switches: int
    appliances: int


@dataclass(frozen=True, slots=True)
class Rollup:
    """A row, hall or the site: summed IT load against its capacity."""

    level: str
    name: str
    capacity_kw: float
    nameplate_kw: float
    expected_kw: float


@dataclass(frozen=True, slots=True)
class PowerPlan:
    racks: list[RackPower]
    rollups: list[Rollup]
    it_nameplate_kw: float
    it_expected_kw: float
    facility_kw: float
    pue: float
    annual_mwh: float
    annual_cost: float
    currency: str
    feeds: list[RackFeeds] = field(default_factory=list)
    """A/B feeds, PDUs and outlets of every rack that holds a device."""


def plan_power(site: Site, catalog: Catalog, racks: Sequence[Rack], nodes: Sequence[Node],
               switches: Sequence[Switch], appliances: Sequence[Appliance] = ()) -> PowerPlan:
    name_kw: dict[str, float] = {r.name: 0.0 for r in racks}
    exp_kw: dict[str, float] = {r.name: 0.0 for r in racks}
    counts: dict[str, list[int]] = {r.name: [0, 0, 0] for r in racks}
    for n in nodes:
        t = catalog.nodes[n.type]
        name_kw[n.rack] += t.max_power_kw
        exp_kw[n.rack] += t.typical_power_kw
        counts[n.rack][0] += 1
    for sw in switches:
        if sw.rack:
            s = catalog.switches[sw.model]
            name_kw[sw.rack] += s.max_power_kw
            exp_kw[sw.rack] += s.typical_power_kw
            counts[sw.rack][1] += 1
    for ap in appliances:
        a = catalog.appliances[ap.model]
        name_kw[ap.rack] += a.max_power_kw
        exp_kw[ap.rack] += a.typical_power_kw
        counts[ap.rack][2] += 1
    rack_rows = [RackPower(
        rack=r.name, hall=r.hall, row=r.row, budget_kw=r.power_kw, cooling=r.cooling,
        cooling_limit_kw=COOLING_LIMIT_KW[r.cooling], nameplate_kw=round(name_kw[r.name], 3),
        expected_kw=round(exp_kw[r.name], 3), headroom_kw=round(r.power_kw - name_kw[r.name], 3),
        nodes=counts[r.name][0], switches=counts[r.name][1], appliances=counts[r.name][2])
        for r in racks]
    rollups: list[Rollup] = []
    for hall in site.halls:
        for row in hall.rows:
            rs = [x for x in rack_rows if x.hall == hall.name and x.row == row.name]
            rollups.append(Rollup("row", f"{hall.name}/{row.name}",
                                  round(sum(x.budget_kw for x in rs), 3),
                                  round(sum(x.nameplate_kw for x in rs), 3),
                                  round(sum(x.expected_kw for x in rs), 3)))
        hs = [x for x in rack_rows if x.hall == hall.name]
        rollups.append(Rollup("hall", hall.name, hall.power_capacity_kw,
                              round(sum(x.nameplate_kw for x in hs), 3),
                              round(sum(x.expected_kw for x in hs), 3)))
    it_name = round(sum(x.nameplate_kw for x in rack_rows), 3)
    it_exp = round(sum(x.expected_kw for x in rack_rows), 3)
    pue = site.site.pue_target
    facility = round(it_name * pue, 3)
    rollups.append(Rollup("site", site.site.name, site.site.power_capacity_mw * 1000, it_name,
                          it_exp))
    mwh = round(it_exp * pue * HOURS_PER_YEAR / 1000, 1)
    return PowerPlan(rack_rows, rollups, it_name, it_exp, facility, pue, mwh,
                     round(mwh * 1000 * site.site.electricity_price_per_kwh, 0),
                     site.site.currency,
                     plan_feeds(catalog, racks, nodes, switches, appliances))
