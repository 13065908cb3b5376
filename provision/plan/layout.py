"""Racks on the floor and nodes in racks: the physical layout every other planner reads."""

from __future__ import annotations

from dataclasses import dataclass

from provision.errors import PlanError
from provision.models.catalog import Catalog
from provision.models.site import Site

RACK_UNIT_M = 0.04445
"""Height of one rack unit, meters."""

RACK_DEPTH_M = 1.2
"""Floor depth of a rack (front to back), meters: rows closer than this stand on each other."""


@dataclass(frozen=True, slots=True)
class Rack:
    """One rack, with its floor position (meters, campus coordinates)."""

    name: str
    hall: str
    row: str
    index: int
    order: int
    x: float
    y: float
    size_u: int
    power_kw: float
    cooling: str
    pdus: int
    pdu: str = ""
    """Catalog PDU model of the rack's PDUs."""


@dataclass(frozen=True, slots=True)
class Node:
    """One server in a rack slot."""

    name: str
    group: str
    type: str
    role: str
    index: int
    """1-based index within its group."""
    order: int
    """0-based position among all nodes of the site (groups in file order)."""
    rack: str
    slot: int
    u: int
    rack_units: int


def rack_name(pattern: str, hall: str, row: str, index: int) -> str:
    return pattern.format(hall=hall, row=row, index=index)


def layout_racks(site: Site) -> list[Rack]:
    """Every rack of the site in file order (halls, rows, racks)."""
    racks: list[Rack] = []
    for hall in site.halls:
        for row in hall.rows:
            for i in range(1, row.racks + 1):
                racks.append(Rack(
                    name=rack_name(row.rack_names, hall.name, row.name, i),
                    hall=hall.name, row=row.name, index=i, order=len(racks),
                    x=round(hall.x_m + row.x_m + (i - 1) * row.rack_pitch_m, 3),
                    y=round(hall.y_m + row.y_m, 3),
                    size_u=row.rack.size_u, power_kw=row.rack.power_kw,
                    cooling=row.rack.cooling, pdus=row.rack.pdus, pdu=row.rack.pdu,
                ))
    return racks


def su_breaks(site: Site, catalog: Catalog) -> dict[str, tuple[int, int, int]]:
    """Groups cabled into scalable units (a rail-optimized InfiniBand fabric), by name:
    (that fabric's nodes placed before the group, nodes in SU 1, node slots per SU).

    SU 1 holds ``su_size`` minus the UFM's slots (the UFM takes those leaf ports; its slot in
    the rack stays empty), every later SU ``su_size``; each SU starts on a rack boundary."""
    out: dict[str, tuple[int, int, int]] = {}
    for cf in site.fabrics.ib().values():
        if cf.topology != "rail-optimized":
            continue
        before = 0
        for g in site.node_groups:
            if g.name not in cf.node_groups or g.name in out:
                continue
            t = catalog.nodes.get(g.type)
            rails = len(t.compute_hcas) if t is not None else 0
            ufm_slots = -(-cf.ufm_ports // rails) if cf.ufm_ports and rails else 0
            out[g.name] = (before, max(1, cf.su_size - ufm_slots), cf.su_size)
            before += g.count
    return out


def slot_indices(count: int, per_rack: int, brk: tuple[int, int, int] | None) -> list[int]:
    """Flat slot index (rack * per_rack + slot) of each of ``count`` nodes: consecutive, but
    with ``brk`` (see ``su_breaks``) every SU starts in a fresh rack."""
    if brk is None:
        return list(range(count))
    before, first, size = brk
    out: list[int] = []
    pos = 0
    for i in range(count):
        f = before + i
        if (f == first or (f > first and (f - first) % size == 0)) and pos % per_rack:
            pos += per_rack - pos % per_rack
        out.append(pos)
        pos += 1
    return out


def place_nodes(site: Site, catalog: Catalog, racks: list[Rack]) -> list[Node]:
    """Fill each group's rows rack by rack (each SU from a fresh rack); raise PlanError naming
    the group when racks run out."""
    by_row: dict[tuple[str, str], list[Rack]] = {}
    for r in racks:
        by_row.setdefault((r.hall, r.row), []).append(r)
    nodes: list[Node] = []
    breaks = su_breaks(site, catalog)
    for group in site.node_groups:
        ntype = catalog.nodes.get(group.type)
        if ntype is None:
            raise PlanError(f"node group {group.name} references unknown catalog type {group.type!r}")
        p = group.placement
        slots: list[tuple[Rack, int, int]] = []
        for ri, row in enumerate(p.rows):
            row_racks = by_row.get((p.hall, row))
            if row_racks is None:
                raise PlanError(f"node group {group.name} references unknown row {row!r} "
                                f"in hall {p.hall!r}")
            start = p.first_rack - 1 if ri == 0 else 0
            for rack in row_racks[start:]:
                for s, u in enumerate(p.u_positions, start=1):
                    slots.append((rack, s, u))
        where = slot_indices(min(group.count, len(slots) + 1), p.nodes_per_rack,
                             breaks.get(group.name))
        if len(slots) < group.count or (where and len(slots) <= where[-1]):
            racks_needed = max(-(-group.count // p.nodes_per_rack),
                               where[-1] // p.nodes_per_rack + 1 if where else 0)
            sus = " (each scalable unit starts a rack)" if group.name in breaks else ""
            raise PlanError(
                f"node group {group.name}: {group.count} nodes need {racks_needed} racks at "
                f"{p.nodes_per_rack} per rack{sus}, rows {', '.join(p.rows)} of hall {p.hall} "
                f"offer {len(slots) // p.nodes_per_rack}")
        for i in range(group.count):
            rack, slot, u = slots[where[i]]
            name = group.hostname.format(group=group.name, index=i + 1, rack=rack.name,
                                         slot=slot, hall=rack.hall, row=rack.row)
            nodes.append(Node(name=name, group=group.name, type=group.type, role=group.role,
                              index=i + 1, order=len(nodes), rack=rack.name, slot=slot, u=u,
                              rack_units=ntype.rack_units))
    return nodes


def distance_m(a: Rack, b: Rack) -> float:
    """Horizontal cable run between two racks (Manhattan distance on the floor)."""
    return abs(a.x - b.x) + abs(a.y - b.y)
