"""Cables: one per link, with medium, purchasable length, SKUs and a stable label ID."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from provision.errors import PlanError
from provision.models.catalog import SPEED_GBPS, CableType, Catalog
from provision.plan.fabric import Link
from provision.plan.layout import RACK_UNIT_M, Rack

MEDIUM_ORDER = ("dac", "acc", "aoc", "fiber-mm", "fiber-sm", "copper-rj45")
"""Preference when several cables reach: cheapest and lowest power first."""

TRAY_M = 0.6
"""Overhead tray clearance above each rack, meters."""
SLACK = 1.1
"""Multiplier for service loops and routing around tray corners."""
SAME_RACK_SLACK_M = 0.5

FABRIC_CODE = {"compute": "IB", "storage": "ST", "inband": "IN", "oob": "OB"}


@dataclass(frozen=True, slots=True)
class End:
    """Where a link end physically sits."""

    rack: str
    u: int
    is_host: bool
    ports_per_cage: int = 1


@dataclass(slots=True)
class Cable:
    """One cable to buy, label and install (a record: never mutated once planned; not
    frozen because frozen construction costs 7x more at half a million cables)."""

    id: str
    fabric: str
    kind: str
    a: str
    a_port: str
    a_rack: str
    b: str
    b_port: str
    b_cage: str
    b_rack: str
    medium: str
    sku: str
    length_m: float
    run_m: float
    a_optic: str
    b_optic: str


def cable_id(link: Link) -> str:
    """Stable ID derived from the lower end (never from list positions)."""
    return f"{FABRIC_CODE[link.fabric]}:{link.a}:{link.a_port}"


def run_length(a: Rack, ua: int, b: Rack, ub: int) -> float:
    """Cable run in meters: horizontal distance, vertical drops to the tray, and slack."""
    if a.name == b.name:
        return abs(ua - ub) * RACK_UNIT_M + SAME_RACK_SLACK_M
    horizontal = abs(a.x - b.x) + abs(a.y - b.y)
    drops = ((a.size_u - ua) + (b.size_u - ub)) * RACK_UNIT_M + 2 * TRAY_M
    return (horizontal + drops) * SLACK


def candidates(catalog: Catalog, technology: str, gbps: int) -> list[CableType]:
    """Cables of the technology at the smallest speed >= gbps, in medium preference order."""
    fitting = [c for c in catalog.cables.values()
               if c.technology == technology and c.speed_gbps >= gbps]
    if not fitting:
        return []
    speed = min(c.speed_gbps for c in fitting)
    same = [c for c in fitting if c.speed_gbps == speed]
    return sorted(same, key=lambda c: (MEDIUM_ORDER.index(c.medium), c.max_length_m, c.name))


def choose(options: Sequence[CableType], run: float) -> tuple[CableType, float] | None:
    for c in options:
        if c.max_length_m >= run:
            length = next((x for x in c.lengths_m if x >= run - 1e-9), None)
            if length is not None:
                return c, length
    return None


def link_speed_gbps(fabric: str, link_kind: str, ib_speed: str | None, nic_gbps: int,
                    switch_gbps: int) -> int:
    if fabric == "compute" and ib_speed:
        return SPEED_GBPS[ib_speed]
    if link_kind == "node-tor":
        return nic_gbps
    return switch_gbps


class CableMaker:
    """Cables for the links of one fabric technology.

    The cable choice depends only on the speed, the rounded run and which end is a host,
    and a cage label only on the port and the cage width, so both are memoized: a GW-scale
    site has half a million links but a few thousand distinct runs.
    """

    def __init__(self, catalog: Catalog, technology: str, racks: dict[str, Rack]) -> None:
        self.catalog = catalog
        self.technology = technology
        self.racks = racks
        self._options: dict[int, list[CableType]] = {}
        self._picks: dict[tuple[int, float, bool], tuple[str, str, float, str, str]] = {}
        self._cages: dict[tuple[str, int], str] = {}

    def cable(self, link: Link, a: End, b: End, gbps: int) -> Cable:
        ra, rb = self.racks[a.rack], self.racks[b.rack]
        run = round(run_length(ra, a.u, rb, b.u), 2)
        key = (gbps, run, a.is_host)
        pick = self._picks.get(key)
        if pick is None:
            pick = self._picks[key] = self._pick(link, gbps, run, a.is_host)
        cage_key = (link.b_port, b.ports_per_cage)
        cage = self._cages.get(cage_key)
        if cage is None:
            cage = self._cages[cage_key] = cage_of(link.b_port, b.ports_per_cage)
        medium, sku, length, a_optic, b_optic = pick
        return Cable(cable_id(link), link.fabric,
                     link.kind, link.a, link.a_port, ra.name, link.b, link.b_port, cage,
                     rb.name, medium, sku, length, run, a_optic, b_optic)

    def _pick(self, link: Link, gbps: int, run: float,
              a_is_host: bool) -> tuple[str, str, float, str, str]:
        options = self._options.get(gbps)
        if options is None:
            options = self._options[gbps] = candidates(self.catalog, self.technology, gbps)
        picked = choose(options, run)
        if picked is None:
            longest = max((c.max_length_m for c in options), default=0)
            raise PlanError(f"{link.fabric} link {link.a}:{link.a_port} -> {link.b}:"
                            f"{link.b_port} needs a {run:.1f} m run; the longest cable for it "
                            f"reaches {longest} m (move the switch to a nearer network rack)")
        cable, length = picked
        a_optic = b_optic = ""
        if cable.medium.startswith("fiber"):
            a_optic = (cable.host_transceiver or cable.transceiver or "") if a_is_host \
                else (cable.transceiver or "")
            b_optic = cable.transceiver or ""
        return cable.medium, cable.name, length, a_optic, b_optic


def cage_of(port: str, ports_per_cage: int) -> str:
    """Front-panel label of a switch port: ``cage/lane`` for twin-port cages, else the port."""
    if not port.isdigit() or ports_per_cage == 1:
        return port
    p = int(port)
    return f"{math.ceil(p / ports_per_cage)}/{(p - 1) % ports_per_cage + 1}"
