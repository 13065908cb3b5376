"""Physical cabling: which links share a cage, a cable and an optic; medium, length, labels.

A link is one logical port-to-port connection; a *cable* is the thing a crew pulls and labels.
The two are not the same on twin-port hardware (NVIDIA Quantum-2/-X800 OSFP cages, the DGX
H100/H200/B200 system cages; shared/reference/fabrics.md):

* a cage holds **one** plug, so the medium is chosen per cage, never per link;
* a twin-port copper cable (DAC/ACC) joins one cage to **one** peer cage and carries both of
  its links under one label; a cage whose links go to different peers (or to a single-port
  end) takes a twin-port transceiver, and each of its links is its own fiber (an MPO leg);
* both fiber legs of a module are the same fiber type, and a leg's two ends too, so every
  set of cages joined by fiber legs uses one fiber type (the one that reaches its longest run);
* an optic is one module per cage that carries fiber (a twin-port module carries two links).

Each planned ``Cable`` row is one link; ``cable`` names the physical cable it rides in.
Which links share a cable choice (closed cage pairs, stars, fiber sets) is decided in
``provision.plan.cagegroups``; this module gathers the per-link facts and picks the cables.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provision.errors import PlanError
from provision.models.catalog import SPEED_GBPS, CableType, Catalog, NodeType
from provision.plan.cagegroups import MIXED, Cut, Groups, group_links
from provision.plan.fabric import Link
from provision.plan.layout import RACK_UNIT_M, Rack

MEDIUM_ORDER = ("copper-rj45", "dac", "acc", "aoc", "fiber-mm", "fiber-sm")
"""Preference when several cables reach: cheapest and lowest power first (RJ45 copper is
only ever a 1G option, ahead of 1G single-mode fiber)."""
PLUGGED = ("dac", "acc", "aoc", "copper-rj45")
"""Media whose plugs are part of the cable: one cable per cage pair, no separate optics."""

TRAY_M = 0.6
"""Overhead tray clearance above each rack, meters."""
SLACK = 1.1
"""Multiplier for service loops and routing around tray corners."""
SAME_RACK_SLACK_M = 0.5

FABRIC_CODE = {"compute": "IB", "storage": "ST", "inband": "IN", "oob": "OB"}


@dataclass(frozen=True, slots=True)
class HostPort:
    """Where a host's port sits on its chassis: the cage it shares and the printed label."""

    cage: str
    label: str
    width: int


@dataclass(frozen=True, slots=True)
class End:
    """Where a link end physically sits."""

    rack: str
    u: int
    is_host: bool
    ports_per_cage: int = 1
    host_ports: Mapping[str, HostPort] | None = None
    """A host's ports that sit in shared or labelled cages (the rest are single-port)."""


@dataclass(slots=True)
class Cable:
    """One link as it is cabled: its ends, their cages, the physical cable it rides in and
    the optic in each cage (a record: never mutated once planned; not frozen because frozen
    construction costs 7x more at half a million links)."""

    id: str
    """The link's ID (from its lower end); also the physical cable's label when it is alone."""
    cable: str
    """Label of the physical cable: a twin-port DAC's two links share one."""
    fabric: str
    kind: str
    a: str
    a_port: str
    a_cage: str
    """The a end's port as printed on the front panel or chassis (``17/1``, ``OSFP4P2``)."""
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
    """Module in the b cage (shared by both links of a twin-port cage); empty for copper."""
    a_module: str
    """The a end's cage that holds ``a_optic`` (links of one cage name the same one)."""
    b_module: str


def cable_id(link: Link) -> str:
    """Stable ID derived from the lower end (never from list positions)."""
    # Further InfiniBand fabrics share "IB": an HCA or switch is on one fabric only.
    return f"{FABRIC_CODE.get(link.fabric, 'IB')}:{link.a}:{link.a_port}"


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


def length_for(c: CableType, run: float) -> float | None:
    """Shortest purchasable length of ``c`` that covers ``run``."""
    if c.max_length_m < run:
        return None
    return next((x for x in c.lengths_m if x >= run - 1e-9), None)


def link_speed_gbps(fabric: str, link_kind: str, ib_speed: str | None, nic_gbps: int,
                    switch_gbps: int) -> int:
    if fabric == "compute" and ib_speed:
        return SPEED_GBPS[ib_speed]
    if link_kind == "node-tor":
        return nic_gbps
    return switch_gbps


def host_ports(t: NodeType) -> dict[str, HostPort]:
    """The compute ports of a node type that sit in shared cages or carry a chassis label."""
    width = Counter(h.cage for h in t.compute_hcas if h.cage is not None)
    return {h.device: HostPort(str(h.cage) if h.cage is not None else h.device,
                               h.label or h.device, width[h.cage] if h.cage is not None else 1)
            for h in t.compute_hcas if h.cage is not None or h.label}


def cage_of(port: str, ports_per_cage: int) -> str:
    """Front-panel label of a switch port: ``cage/lane`` for twin-port cages, else the port."""
    if not port.isdigit() or ports_per_cage == 1:
        return port
    p = int(port)
    return f"{math.ceil(p / ports_per_cage)}/{(p - 1) % ports_per_cage + 1}"


_Place = tuple[str, int, bool, End, dict[str, tuple[str, str, int]],
               dict[str, tuple[float, int, int, dict[int, float]]], dict[str, int]]
"""What a link reads of one end's device: rack, U, is-host, the End, its port memo (port ->
cage key, label, width), its rack's run memo (other rack -> run facts) and its cages
(cage key -> cage number)."""

_Choice = tuple[int, bool, str, float, str, str, CableType]
"""A group's cable at one speed: (speed, plugged, its label, its length, medium, SKU, the
cable); label and length only for a plugged cable (fiber legs are labelled and cut per
link). Medium and SKU are read once per group, not once per link."""


def _length(c: CableType, run: float) -> float:
    """``length_for`` of a cable ``_pick`` chose, which covers ``run``."""
    got = length_for(c, run)
    assert got is not None  # _pick chose a cable that covers ``far`` >= run
    return got


class CableMaker:
    """Cables for the links of one fabric technology.

    Rack-pair distances, cage labels and candidate lists are memoized: a GW-scale site has
    half a million links but a few thousand rack pairs and a few hundred port numbers.
    """

    def __init__(self, catalog: Catalog, technology: str, racks: dict[str, Rack]) -> None:
        self.catalog = catalog
        self.technology = technology
        self.racks = racks
        self._options: dict[int, list[CableType]] = {}
        self._cages: dict[tuple[str, int], tuple[str, str, int]] = {}
        self._runs: dict[str, dict[str, tuple[float, int, int, dict[int, float]]]] = {}
        """Rack -> other rack -> (floor distance, their heights, run by the Us both ends
        drop): what ``run_length`` reads (nested, so a link builds no key tuple)."""
        self._same_rack: dict[int, float] = {}
        """Run within one rack by the Us between its ends."""

    def options(self, gbps: int) -> list[CableType]:
        got = self._options.get(gbps)
        if got is None:
            got = self._options[gbps] = candidates(self.catalog, self.technology, gbps)
        return got

    def _end(self, port: str, e: End) -> tuple[str, str, int]:
        """(cage key, printed label, cage width) of one link end."""
        if e.is_host:
            hp = e.host_ports.get(port) if e.host_ports else None
            if hp is None:
                return port, port, 1
            return hp.cage, hp.label, hp.width
        if not port.isdigit():  # a named port (mgmt0) is its own single-port jack
            return port, port, 1
        key = (port, e.ports_per_cage)
        got = self._cages.get(key)
        if got is None:
            label = cage_of(port, e.ports_per_cage)
            got = self._cages[key] = (label.split("/", 1)[0], label, e.ports_per_cage)
        return got

    def _places(self, ends: Mapping[str, End]) -> dict[str, _Place]:
        """Each device's :data:`_Place`: what a link reads of its end, gathered once per
        device instead of once per link end (half a million links, tens of thousands of
        devices). Devices with the same ports share one port memo."""
        port_memos: dict[tuple[bool, int], dict[str, tuple[str, str, int]]] = {}
        runs = self._runs
        places: dict[str, _Place] = {}
        for name, e in ends.items():
            shape = (True, id(e.host_ports)) if e.is_host else (False, e.ports_per_cage)
            memo = port_memos.get(shape)
            if memo is None:
                memo = port_memos[shape] = {}
            from_rack = runs.get(e.rack)
            if from_rack is None:
                from_rack = runs[e.rack] = {}
            places[name] = (e.rack, e.u, e.is_host, e, memo, from_rack, {})
        return places

    def cables(self, links: Sequence[Link], ends: Mapping[str, End],
               gbps: Sequence[int]) -> list[Cable]:
        """Cable every link; ``gbps[i]`` is the speed of ``links[i]``."""
        cut = self._cut(links, self._places(ends))
        return self._records(links, gbps, cut, group_links(cut))

    def _cut(self, links: Sequence[Link], places: Mapping[str, _Place]) -> Cut:
        """Per link: its run, the cages at its ends and their labels (see :class:`Cut`)."""
        racks, end_of, same_rack = self.racks, self._end, self._same_rack
        cut = Cut()
        runs_append, info_append = cut.runs.append, cut.info.append
        a_append, b_append = cut.a_ids.append, cut.b_ids.append
        wa_append, wb_append = cut.wa.append, cut.wb.append
        count, cage_names, mates = cut.count, cut.cage_names, cut.mates
        count_append, names_append, mates_append = count.append, cage_names.append, \
            cut.mates.append
        for lk in links:
            pa, pb = lk.a_port, lk.b_port
            rack_a, ua, host_a, ea, ports_a, from_a, cages_a = places[lk.a]
            rack_b, ub, _, eb, ports_b, _, cages_b = places[lk.b]
            # run_length, its rack-pair part memoized (the same float operations in the
            # same order: the same meters to the last bit)
            if rack_a == rack_b:
                du = abs(ua - ub)
                run = same_rack.get(du)
                if run is None:
                    run = same_rack[du] = round(du * RACK_UNIT_M + SAME_RACK_SLACK_M, 2)
            else:
                pair = from_a.get(rack_b)
                if pair is None:
                    r1, r2 = racks[rack_a], racks[rack_b]
                    pair = from_a[rack_b] = (abs(r1.x - r2.x) + abs(r1.y - r2.y),
                                             r1.size_u, r2.size_u, {})
                drop = (pair[1] - ua) + (pair[2] - ub)
                run = pair[3].get(drop)
                if run is None:
                    run = pair[3][drop] = round(
                        (pair[0] + (drop * RACK_UNIT_M + 2 * TRAY_M)) * SLACK, 2)
            runs_append(run)
            got = ports_a.get(pa)
            if got is None:
                got = ports_a[pa] = end_of(pa, ea)
            ka, la, wa = got
            got = ports_b.get(pb)
            if got is None:
                got = ports_b[pb] = end_of(pb, eb)
            kb, lb, wb = got
            info_append((la, lb, rack_a, rack_b, host_a))
            wa_append(wa)
            wb_append(wb)
            ia = cages_a.get(ka)
            if ia is None:
                ia = cages_a[ka] = len(count)
                count_append(1)
                names_append(ka)
                mates_append(None)
            else:
                count[ia] += 1
            ib = cages_b.get(kb)
            if ib is None:
                ib = cages_b[kb] = len(count)
                count_append(1)
                names_append(kb)
                mates_append(None)
            else:
                count[ib] += 1
            a_append(ia)
            b_append(ib)
            mate = mates[ia]
            if mate != ib:
                mates[ia] = ib if mate is None else MIXED
            mate, back = mates[ib], -1 - ia
            if mate != back:
                mates[ib] = back if mate is None else MIXED
        return cut

    def _records(self, links: Sequence[Link], gbps: Sequence[int], cut: Cut,
                 groups: Groups) -> list[Cable]:
        """The Cable rows: each group's cable chosen once (per speed), then per link only
        what differs between the links of a group (ID, ends, run; a fiber leg's length)."""
        lengths: dict[tuple[str, float], float] = {}
        optics: dict[tuple[str, bool, bool], str] = {}
        chosen: list[_Choice | None] = [None] * len(groups.far)
        picks: dict[tuple[int, float, int], CableType] = {}
        kinds: dict[tuple[int, float, int], tuple[CableType, bool, float]] = {}
        far, first, legs = groups.far, groups.first, groups.legs
        cage_names, wa, a_ids, b_ids = cut.cage_names, cut.wa, cut.a_ids, cut.b_ids
        out: list[Cable] = []
        out_append = out.append
        fabric_seen: str | None = None
        code = ""
        for i, (lk, (la, lb, rack_a, rack_b, host_a), gi, run, speed) in enumerate(
                zip(links, cut.info, groups.of, cut.runs, gbps, strict=True)):
            a, a_port, fabric = lk.a, lk.a_port, lk.fabric
            if fabric != fabric_seen:  # one fabric per call, in practice
                fabric_seen, code = fabric, FABRIC_CODE.get(fabric, "IB")
            cid = f"{code}:{a}:{a_port}"
            ch = chosen[gi]
            if ch is None or ch[0] != speed:
                # most groups are a cage pair of one or two links: the cable by its
                # (speed, longest run, plugs), labelled after the group's first link
                key = (speed, far[gi], legs[gi])
                kind = kinds.get(key)
                if kind is None:
                    kind = kinds[key] = self._kind(links, groups, gi, speed, picks, lengths)
                start = first[gi]
                label = cid if start == i else cable_id(links[start])
                c = kind[0]
                ch = (speed, kind[1], label, kind[2], c.medium, c.name, c)
                if chosen[gi] is None:
                    chosen[gi] = ch
            _, plugged, label, length, medium, sku, c = ch
            if plugged:
                out_append(Cable(cid, label, fabric, lk.kind, a, a_port, la, rack_a, lk.b,
                                 lk.b_port, lb, rack_b, medium, sku, length, run,
                                 "", "", "", ""))
                continue
            twin = wa[i] > 1
            ok = (sku, host_a, twin)
            a_optic = optics.get(ok, "")
            if not a_optic:
                a_optic = optics[ok] = self._optic(c, host_a, twin)
            lkey = (sku, run)
            leg_m = lengths.get(lkey)
            if leg_m is None:
                leg_m = lengths[lkey] = _length(c, run)
            out_append(Cable(cid, cid, fabric, lk.kind, a, a_port, la, rack_a, lk.b,
                             lk.b_port, lb, rack_b, medium, sku, leg_m, run,
                             a_optic, c.transceiver or "", cage_names[a_ids[i]],
                             cage_names[b_ids[i]]))
        return out

    def _kind(self, links: Sequence[Link], groups: Groups, gi: int, speed: int,
              picks: dict[tuple[int, float, int], CableType],
              lengths: dict[tuple[str, float], float]) -> tuple[CableType, bool, float]:
        """The cable of group ``gi`` at ``speed``: the first that reaches the group's
        longest run (see ``_pick``), whether it is plugged, and then its length (cut to
        that run; fiber legs are cut per link)."""
        far, legs = groups.far[gi], groups.legs[gi]
        key = (speed, far, legs)
        c = picks.get(key)
        if c is None:
            c = picks[key] = self._pick(links[groups.worst[gi]], speed, far, legs)
        if c.medium not in PLUGGED:
            return c, False, 0.0
        lkey = (c.name, far)
        length = lengths.get(lkey)
        if length is None:
            length = lengths[lkey] = _length(c, far)
        return c, True, length

    def _optic(self, c: CableType, is_host: bool, twin: bool) -> str:
        if not is_host:
            return c.transceiver or ""
        if twin:
            return c.host_twin_transceiver or c.transceiver or ""
        return c.host_transceiver or c.transceiver or ""

    def _pick(self, link: Link, gbps: int, run: float, legs: int) -> CableType:
        """The first cable that reaches ``run``: a straight one (``legs`` 1), a splitter
        with at least ``-legs`` plugs (``legs`` < 0), or fiber (``legs`` 0, and the
        fallback of the others)."""
        options = self.options(gbps)
        usable = [c for c in options if c.medium not in PLUGGED
                  or (legs == 1 and c.legs == 1) or (legs < 0 and c.legs >= -legs > 0
                                                     and c.legs > 1)]
        plugged = legs != 0
        for c in usable:
            if length_for(c, run) is not None:
                return c
        if not usable:
            raise PlanError(f"{link.fabric} link {link.a}:{link.a_port} -> {link.b}:"
                            f"{link.b_port}: no {self.technology} cable or optic of "
                            f"{gbps} Gb/s in the catalog joins its cages (a twin-port cage "
                            "facing single-port ones, or several peers, needs fiber with "
                            "transceivers)")
        longest = max(c.max_length_m for c in usable)
        what = "cable" if plugged else "fiber (its cage reaches more than one peer)"
        raise PlanError(f"{link.fabric} link {link.a}:{link.a_port} -> {link.b}:"
                        f"{link.b_port} needs a {run:.1f} m run; the longest {what} for it "
                        f"reaches {longest} m (move the switch to a nearer network rack)")
