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


@dataclass(frozen=True, slots=True)
class Cable:
    """One cable to buy, label and install."""

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


def make_cable(link: Link, a: End, b: End, ra: Rack, rb: Rack, options: Sequence[CableType],
               b_cage: str) -> Cable:
    run = round(run_length(ra, a.u, rb, b.u), 2)
    picked = choose(options, run)
    if picked is None:
        longest = max((c.max_length_m for c in options), default=0)
        raise PlanError(f"{link.fabric} link {link.a}:{link.a_port} -> {link.b}:{link.b_port} "
                        f"needs a {run:.1f} m run; the longest cable for it reaches {longest} m "
                        "(move the switch to a nearer network rack)")
    cable, length = picked
    a_optic = b_optic = ""
    if cable.medium.startswith("fiber"):
        a_optic = (cable.host_transceiver or cable.transceiver or "") if a.is_host \
            else (cable.transceiver or "")
        b_optic = cable.transceiver or ""
    return Cable(id=cable_id(link), fabric=link.fabric, kind=link.kind, a=link.a,
                 a_port=link.a_port, a_rack=ra.name, b=link.b, b_port=link.b_port,
                 b_cage=b_cage, b_rack=rb.name, medium=cable.medium, sku=cable.name,
                 length_m=length, run_m=run, a_optic=a_optic, b_optic=b_optic)


def cage_of(port: str, ports_per_cage: int) -> str:
    """Front-panel label of a switch port: ``cage/lane`` for twin-port cages, else the port."""
    if not port.isdigit() or ports_per_cage == 1:
        return port
    p = int(port)
    return f"{math.ceil(p / ports_per_cage)}/{(p - 1) % ports_per_cage + 1}"
