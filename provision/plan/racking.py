"""Put switches (and the UFM appliance) into rack units."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from provision.errors import PlanError
from provision.models.catalog import Catalog
from provision.plan.fabric import Switch
from provision.plan.layout import Node, Rack, distance_m


@dataclass(slots=True)
class Appliance:
    """A rack-mounted appliance (catalog ``appliances:``), e.g. the UFM; placed like a switch."""

    name: str
    model: str
    role: str
    rack: str = ""
    u: int = 0


class RackSpace:
    """Free rack units per rack; allocates from the top of a rack downwards."""

    def __init__(self, racks: Sequence[Rack], nodes: Iterable[Node], catalog: Catalog) -> None:
        self.racks = {r.name: r for r in racks}
        self.used: dict[str, set[int]] = {r.name: set() for r in racks}
        self.kw = {r.name: r.power_kw for r in racks}
        for n in nodes:
            self.used[n.rack].update(range(n.u, n.u + n.rack_units))
            self.kw[n.rack] -= catalog.nodes[n.type].max_power_kw
        self.free = {r.name: r.size_u - len(self.used[r.name]) for r in racks}

    def take(self, rack: str, units: int, kw: float = 0.0, strict_power: bool = True) -> int | None:
        """Lowest U of a free block of ``units`` nearest the top of ``rack``, or None.

        With ``strict_power`` a rack whose remaining power budget cannot carry ``kw`` is full.
        """
        if strict_power and kw > self.kw[rack] + 1e-9:
            return None
        size = self.racks[rack].size_u
        used = self.used[rack]
        for top in range(size, units - 1, -1):
            block = range(top - units + 1, top + 1)
            if not any(u in used for u in block):
                used.update(block)
                self.free[rack] -= units
                self.kw[rack] -= kw
                return block.start
        return None


    def release(self, rack: str, u: int, units: int, kw: float = 0.0) -> None:
        """Give back a block that :meth:`take` returned."""
        self.used[rack].difference_update(range(u, u + units))
        self.free[rack] += units
        self.kw[rack] += kw


def resolve_racks(refs: Sequence[str], racks: Sequence[Rack]) -> list[str]:
    """Rack names from ``refs``: rack names, or ``hall/row`` for every rack of a row."""
    names = {r.name for r in racks}
    out: list[str] = []
    for ref in refs:
        if "/" in ref:
            hall, row = ref.split("/", 1)
            found = [r.name for r in racks if r.hall == hall and r.row == row]
            if not found:
                raise PlanError(f"network_racks entry {ref!r} names no row (use hall/row)")
            out.extend(found)
        elif ref in names:
            out.append(ref)
        else:
            raise PlanError(f"network_racks entry {ref!r} is not a rack of this site")
    return out


def place_appliance(space: RackSpace, appliance: Appliance, network_racks: Sequence[str],
                    catalog: Catalog, what: str) -> None:
    """The first network rack with room (and power budget) for the appliance, else the first
    with room; raise PlanError when none has."""
    spec = catalog.appliances[appliance.model]
    for strict in (True, False):
        for rack in network_racks:
            u = space.take(rack, spec.rack_units, spec.max_power_kw, strict_power=strict)
            if u is not None:
                appliance.rack, appliance.u = rack, u
                return
    raise PlanError(f"{what}: no rack space left for the {spec.model} ({appliance.name}, "
                    f"{spec.rack_units}U) in {', '.join(network_racks[:4]) or 'network_racks'}")


def place_switches(space: RackSpace, switches: Sequence[Switch], network_racks: Sequence[str],
                   catalog: Catalog, anchors: dict[str, str], fabric: str,
                   apart: Mapping[str, Switch] | None = None) -> None:
    """Each switch goes to the network rack nearest its anchor rack (the rack of its first
    lower-tier neighbour, ``anchors``), else the first with room; ToRs stay in their rack.
    ``apart`` gives a switch its partner (the other half of a redundant pair): once the
    partner is placed, the switch goes to another rack when any has room and power, else
    beside it. Switches that
    already have a U (reserved earlier) keep it."""
    nearest: dict[str, list[str]] = {}
    for sw in switches:
        if sw.u:
            continue  # placed already (a reserved OOB ToR)
        units = catalog.switches[sw.model].rack_units
        kw = catalog.switches[sw.model].max_power_kw
        if sw.tier == "tor":
            candidates = [sw.rack]
        elif not network_racks:
            raise PlanError(f"{fabric} fabric has no network_racks to hold switch {sw.name}")
        elif sw.name in anchors:
            key = anchors[sw.name]
            if key not in nearest:
                anchor = space.racks[key]
                nearest[key] = sorted(network_racks,
                                      key=lambda r: (distance_m(space.racks[r], anchor), r))
            candidates = nearest[key]
        else:
            candidates = list(network_racks)
        partner = (apart or {}).get(sw.name)
        avoid = partner.rack if partner is not None else ""
        # Prefer racks with power budget left, and a rack apart from the partner; when none
        # has power, take rack space anyway and let the power lint (GPU101) report the
        # overdrawn rack instead of hiding it (and GPU116 a pair sharing a rack).
        passes = [(strict, skip) for strict in (sw.tier != "tor", False)
                  for skip in ((avoid, "") if avoid else ("",))]
        u = None
        for strict, skip in passes:
            for rack in candidates:
                if rack == skip:
                    continue
                u = space.take(rack, units, kw, strict_power=strict)
                if u is not None:
                    sw.rack, sw.u = rack, u
                    break
            if u is not None:
                break
        if u is None:
            raise PlanError(f"{fabric} fabric: no rack space left for switch {sw.name} "
                            f"({units}U, {kw:g} kW) in {', '.join(candidates[:4])}"
                            f"{' ...' if len(candidates) > 4 else ''}")
