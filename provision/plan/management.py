"""Management cabling: every switch's and appliance's management port goes to an OOB switch.

A device's ``mgmt0`` port is patched into an OOB ToR of its own rack, on the host ports just
below the ToR's uplinks, counting down (the BMCs count up from port 1, so a node added to a
rack never moves a switch's management cable). An OOB ToR is managed on the network it serves: its own
``mgmt0`` goes to its peer ToR in the rack (or, alone, to one of its own front ports). A device
in a rack without an OOB ToR (an OOB aggregation switch that landed in a rack of its own) goes
to the OOB ToR of the nearest rack that has one. The top units of every network rack are
kept for its OOB ToRs before the other switches fill it (and its power budget) up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provision.errors import PlanError
from provision.models.catalog import Catalog, SwitchType
from provision.plan.fabric import FabricPlan, Link
from provision.plan.layout import Rack, distance_m
from provision.plan.racking import RackSpace

MGMT_PORT = "mgmt0"
"""Name of the management port of every switch and appliance."""

MGMT_GBPS = 1
"""Speed of a management port (1000BASE-T)."""


@dataclass(frozen=True, slots=True)
class Managed:
    """A device whose management port needs an OOB switch port."""

    name: str
    rack: str


def device_racks(devices: Sequence[Managed], racks: Sequence[Rack],
                 have: set[str]) -> list[str]:
    """Racks holding devices that have no OOB ToR yet (not in ``have``), in layout order."""
    want = {d.rack for d in devices if d.rack} - have
    return [r.name for r in racks if r.name in want]


def cable_management(oob: FabricPlan, devices: Sequence[Managed], racks: Sequence[Rack],
                     catalog: Catalog, uplinks: int) -> None:
    """Add one ``mgmt`` link per device to ``oob``; raise PlanError when a ToR runs out of
    ports for them."""
    tors: dict[str, list[str]] = {}
    for s in oob.switches:
        if s.tier == "tor":
            tors.setdefault(s.rack, []).append(s.name)
    if not tors:
        return
    models = {s.name: s.model for s in oob.switches}
    hosts_top: dict[str, int] = {t: 0 for ts in tors.values() for t in ts}
    for lk in oob.links:
        if lk.kind == "node-tor":
            hosts_top[lk.b] = max(hosts_top[lk.b], int(lk.b_port))
    next_port = {t: catalog.switches[models[t]].ports - uplinks for t in hosts_top}
    by_name = {r.name: r for r in racks}
    nearest: dict[str, str] = {}
    seen: dict[str, int] = {}
    for d in devices:
        rack = d.rack
        if rack not in tors:
            if rack not in nearest:
                here = by_name[rack]
                nearest[rack] = min(tors, key=lambda r: (distance_m(by_name[r], here),
                                                         by_name[r].order))
            rack = nearest[rack]
        rack_tors = tors[rack]
        i = seen.get(rack, 0)
        seen[rack] = i + 1
        if d.name in rack_tors:
            tor = rack_tors[(rack_tors.index(d.name) + 1) % len(rack_tors)]
        else:
            tor = rack_tors[i % len(rack_tors)]
        port = next_port[tor]
        if port <= hosts_top[tor]:
            free = catalog.switches[models[tor]].ports - uplinks
            raise PlanError(f"oob fabric: OOB switch {tor} in rack {rack} needs a port for the "
                            f"management port of {d.name}, but its {free} host ports are all "
                            f"taken (set fabrics.oob.per_rack: 2 or a larger switch)")
        next_port[tor] = port - 1
        oob.links.append(Link("oob", "mgmt", d.name, MGMT_PORT, tor, str(port)))


def reserve_oob_tors(space: RackSpace, network_racks: Sequence[str], per_rack: int,
                     model: SwitchType) -> dict[str, list[int]]:
    """Keep the top units (and power) of every network rack for its OOB ToRs, before other
    switches fill the rack up to its budget; rack -> reserved lowest Us."""
    reserved: dict[str, list[int]] = {}
    for rack in network_racks:
        if rack in reserved:
            continue
        us = [space.take(rack, model.rack_units, model.max_power_kw, strict_power=False)
              for _ in range(per_rack)]
        reserved[rack] = [u for u in us if u is not None]
    return reserved


def seat_reserved(space: RackSpace, oob: FabricPlan, reserved: dict[str, list[int]],
                  model: SwitchType) -> None:
    """Put the OOB ToRs into the units kept for them; give back what no ToR needed."""
    left = {r: list(us) for r, us in reserved.items()}
    for s in oob.switches:
        if s.tier == "tor" and left.get(s.rack):
            s.u = left[s.rack].pop(0)
    for rack, us in left.items():
        for u in us:
            space.release(rack, u, model.rack_units, model.max_power_kw)
