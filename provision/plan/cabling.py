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
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provision.errors import PlanError
from provision.models.catalog import SPEED_GBPS, CableType, Catalog, NodeType
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
        self._runs: dict[tuple[str, str], tuple[float, int, int, dict[int, float]]] = {}
        """Rack pair -> (floor distance, their heights, run by the Us both ends drop): what
        ``run_length`` reads."""
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

    def cables(self, links: Sequence[Link], ends: Mapping[str, End],
               gbps: Sequence[int]) -> list[Cable]:
        """Cable every link; ``gbps[i]`` is the speed of ``links[i]``."""
        racks, runs_memo, end_of, cages = self.racks, self._runs, self._end, self._cages
        same_rack = self._same_rack
        runs: list[float] = []
        info: list[tuple[str, str, int, int]] = []
        cage_ids: dict[tuple[str, str], int] = {}  # (device, cage) -> number
        cage_names: list[str] = []
        count: list[int] = []  # links per cage
        a_ids: list[int] = []
        b_ids: list[int] = []
        pairs: dict[int, int] = {}  # a*M + b -> links between the two cages
        big = 1 << 32
        runs_append, info_append = runs.append, info.append
        a_append, b_append = a_ids.append, b_ids.append
        for lk in links:
            a, b, pa, pb = lk.a, lk.b, lk.a_port, lk.b_port
            ea, eb = ends[a], ends[b]
            # run_length, its rack-pair part memoized (the same float operations in the
            # same order: the same meters to the last bit)
            rack_a, rack_b = ea.rack, eb.rack
            if rack_a == rack_b:
                du = abs(ea.u - eb.u)
                run = same_rack.get(du)
                if run is None:
                    run = same_rack[du] = round(du * RACK_UNIT_M + SAME_RACK_SLACK_M, 2)
            else:
                rk = (rack_a, rack_b)
                pair = runs_memo.get(rk)
                if pair is None:
                    r1, r2 = racks[rack_a], racks[rack_b]
                    pair = runs_memo[rk] = (abs(r1.x - r2.x) + abs(r1.y - r2.y),
                                            r1.size_u, r2.size_u, {})
                drop = (pair[1] - ea.u) + (pair[2] - eb.u)
                run = pair[3].get(drop)
                if run is None:
                    run = pair[3][drop] = round(
                        (pair[0] + (drop * RACK_UNIT_M + 2 * TRAY_M)) * SLACK, 2)
            runs_append(run)
            # a switch's numbered port: its cage from the memo (see _end)
            got = None if ea.is_host else cages.get((pa, ea.ports_per_cage))
            ka, la, wa = got if got is not None else end_of(pa, ea)
            got = None if eb.is_host else cages.get((pb, eb.ports_per_cage))
            kb, lb, wb = got if got is not None else end_of(pb, eb)
            info_append((la, lb, wa, wb))
            key = (a, ka)
            ia = cage_ids.get(key)
            if ia is None:
                ia = cage_ids[key] = len(count)
                count.append(1)
                cage_names.append(ka)
            else:
                count[ia] += 1
            key = (b, kb)
            ib = cage_ids.get(key)
            if ib is None:
                ib = cage_ids[key] = len(count)
                count.append(1)
                cage_names.append(kb)
            else:
                count[ib] += 1
            a_append(ia)
            b_append(ib)
            pk = ia * big + ib
            pairs[pk] = pairs.get(pk, 0) + 1
        # A closed pair: every link of both cages runs between them (one cable can carry
        # all), its medium chosen by the pair's longest run. Open cages take fiber only, one
        # fiber type per set of cages joined by legs (union-find over cage numbers).
        parent = list(range(len(count)))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        # A star: a twin-port cage whose every link goes to its own single-port end (two
        # ConnectX-7 cards, a UFM port): a splitter cable can carry them, one plug per end.
        star: dict[int, bool] = {}
        for ia, ib, (_, _, wa, wb) in zip(a_ids, b_ids, info, strict=True):
            leg = wb > 1 and wa == 1 and count[ia] == 1
            star[ib] = star.get(ib, True) and leg
        group: list[int] = []  # the pair key (closed; b*M+b: a star) or -1 - set root (open)
        group_append = group.append
        for ia, ib in zip(a_ids, b_ids, strict=True):
            pk = ia * big + ib
            if pairs[pk] == count[ia] == count[ib]:
                group_append(pk)
                continue
            if star[ib]:
                group_append(ib * big + ib)
                continue
            ra, rb = find(ia), find(ib)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
            group_append(-1)
        # group -> (longest run, its first link, the first link that runs that long)
        far_of: dict[int, tuple[float, int, int]] = {}
        for i, run in enumerate(runs):
            g = group[i]
            if g < 0:
                g = group[i] = -1 - find(a_ids[i])
            seen = far_of.get(g)
            if seen is None:
                far_of[g] = (run, i, i)
            elif run > seen[0]:
                far_of[g] = (run, seen[1], i)
        picks: dict[tuple[int, float, int], CableType] = {}
        lengths: dict[tuple[str, float], float] = {}
        optics: dict[tuple[str, bool, bool], str] = {}
        codes: dict[str, str] = {}
        out: list[Cable] = []
        out_append = out.append
        for i, (lk, (la, lb, wa, wb), g, run, speed) in enumerate(
                zip(links, info, group, runs, gbps, strict=True)):
            far, first, worst = far_of[g]
            if g < 0:  # fiber only
                legs = 0
            elif g // big == g % big:  # a star: a splitter with a plug per link, or fiber
                worst, legs = first, -count[b_ids[i]]
            else:  # a closed pair: a straight cable between equal cages, a splitter leg
                worst = first  # from a twin-port cage to one single-port end, or fiber
                legs = 1 if wa == wb else -1 if wa == 1 else 0
            pk2 = (speed, far, legs)
            c = picks.get(pk2)
            if c is None:
                c = picks[pk2] = self._pick(links[worst], speed, far, legs)
            a, a_port, fabric = lk.a, lk.a_port, lk.fabric
            code = codes.get(fabric)
            if code is None:
                code = codes[fabric] = FABRIC_CODE.get(fabric, "IB")
            cid = f"{code}:{a}:{a_port}"
            ea, eb = ends[a], ends[lk.b]
            if c.medium in PLUGGED:
                want, label = far, cable_id(links[first])
                a_optic = b_optic = a_mod = b_mod = ""
            else:
                want, label = run, cid
                ok = (c.name, ea.is_host, wa > 1)
                a_optic = optics.get(ok, "")
                if not a_optic:
                    a_optic = optics[ok] = self._optic(c, ea.is_host, wa > 1)
                b_optic = c.transceiver or ""
                a_mod, b_mod = cage_names[a_ids[i]], cage_names[b_ids[i]]
            lkey = (c.name, want)
            length = lengths.get(lkey)
            if length is None:
                got_len = length_for(c, want)
                assert got_len is not None  # _pick chose a cable that covers ``far`` >= run
                length = lengths[lkey] = got_len
            out_append(Cable(cid, label, fabric, lk.kind, a, a_port, la, ea.rack,
                             lk.b, lk.b_port, lb, eb.rack, c.medium, c.name, length, run,
                             a_optic, b_optic, a_mod, b_mod))
        return out

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
