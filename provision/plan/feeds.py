"""Power as delivered: A/B feeds, the rack's PDUs on them, every PSU on an outlet.

A rack's PDUs alternate between its feeds (PDU 1 on A, 2 on B, 3 on A, ...). Each device's
PSUs are spread over both feeds (PSU 1 on A, 2 on B, ...; a device with an odd number starts
on the feed the previous odd one did not), on the PDU of that feed with the fewest outlets
of its type taken (then the least load), and on that PDU's least-loaded phase. With both feeds up the PSUs share the device's draw; when
a feed is down, the other feed's PDUs carry the whole rack, so each feed must be able to
(N+N). A PSU with a C14 inlet takes a C13 outlet, a C20 inlet a C19 outlet; a hardwired PSU
(a rack-scale system's power shelf on its own whip) takes none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provision.errors import PlanError
from provision.models.catalog import Catalog
from provision.plan.fabric import Switch
from provision.plan.layout import Node, Rack
from provision.plan.racking import Appliance

FEEDS = ("A", "B")
OUTLET = {"c14": "c13", "c20": "c19"}
"""PDU outlet each PSU inlet plugs into."""


@dataclass(frozen=True, slots=True)
class Device:
    """A powered device of a rack: its name, nameplate draw and PSUs."""

    name: str
    max_kw: float
    psus: int
    inlet: str


@dataclass(frozen=True, slots=True)
class Pdu:
    """One PDU of a rack, with what is plugged into it."""

    name: str
    """``pdu-<rack>-<feed><n>``, e.g. ``pdu-a01-a1`` (see :func:`pdu_names`)."""
    model: str
    feed: str
    load_kw: float
    """Nameplate share of the PSUs on it with both feeds up."""
    c13: int
    c19: int
    """Outlets used, by type."""
    phase_kw: tuple[float, ...]
    """Load per phase (one entry for a 1-phase PDU)."""


@dataclass(frozen=True, slots=True)
class RackFeeds:
    rack: str
    model: str
    pdus: list[Pdu]
    one_feed_kw: float
    """What the weaker feed's PDUs deliver together: the rack's load must fit it (N+N)."""
    load_kw: float
    """The rack's nameplate draw, all on one feed when the other is down."""
    c13: tuple[int, int]
    c19: tuple[int, int]
    """Outlets (used, available) over all PDUs, by type."""
    phase_imbalance_pct: float
    """Worst PDU's (largest - smallest phase load) / mean phase load, 3-phase PDUs only."""
    one_feed: list[str]
    """Devices whose PSUs are all on one feed (one PSU, or a rack with one feed)."""


def pdu_names(rack: Rack) -> list[str]:
    """Names of a rack's PDUs in order: ``pdu-a01-a1``, ``pdu-a01-b1``, ``pdu-a01-a2``, ...
    (PDU 1, 3, ... on feed A; 2, 4, ... on feed B)."""
    return [f"pdu-{rack.name}-{FEEDS[i % 2].lower()}{i // 2 + 1}" for i in range(rack.pdus)]


def _devices(catalog: Catalog, nodes: Sequence[Node], switches: Sequence[Switch],
             appliances: Sequence[Appliance]) -> dict[str, list[Device]]:
    out: dict[str, list[Device]] = {}
    for n in nodes:
        t = catalog.nodes[n.type]
        out.setdefault(n.rack, []).append(Device(n.name, t.max_power_kw, t.psus, t.psu_inlet))
    for s in switches:
        if s.rack:
            m = catalog.switches[s.model]
            out.setdefault(s.rack, []).append(Device(s.name, m.max_power_kw, m.psus,
                                                     m.psu_inlet))
    for a in appliances:
        ap = catalog.appliances[a.model]
        out.setdefault(a.rack, []).append(Device(a.name, ap.max_power_kw, ap.psus,
                                                 ap.psu_inlet))
    return out


_Load = tuple[list[float], list[list[float]], list[dict[str, int]], list[int]]
"""Per PDU: kW, kW per phase, outlets used by type; and which devices sit on one feed."""


def _load(phases: int, n_pdus: int, devices: Sequence[tuple[float, int, str]]) -> _Load:
    """Plug ``devices`` ((max kW, PSUs, inlet) in rack order) into ``n_pdus`` PDUs."""
    feed_of = [FEEDS[i % 2] for i in range(n_pdus)]
    on = {f: [i for i, x in enumerate(feed_of) if x == f] for f in FEEDS}
    kw = [0.0] * n_pdus
    phase = [[0.0] * phases for _ in range(n_pdus)]
    used = [{"c13": 0, "c19": 0} for _ in range(n_pdus)]
    one_feed: list[int] = []
    shift = 0
    for di, (max_kw, psus, inlet) in enumerate(devices):
        share = max_kw / psus
        feeds_used = set()
        for j in range(psus):
            feed = FEEDS[(j + shift) % 2]
            if not on[feed]:
                feed = FEEDS[1 - FEEDS.index(feed)]
            if not on[feed]:
                break  # no PDU at all: nothing to plug into
            feeds_used.add(feed)
            outlet = OUTLET.get(inlet, "")
            i = min(on[feed], key=lambda k: (used[k].get(outlet, 0), kw[k], k))
            kw[i] += share
            p = min(range(phases), key=lambda k: (phase[i][k], k))
            phase[i][p] += share
            if outlet:
                used[i][outlet] += 1
        if psus % 2:
            shift = 1 - shift
        if len(feeds_used) < 2:
            one_feed.append(di)
    return kw, phase, used, one_feed


def plan_feeds(catalog: Catalog, racks: Sequence[Rack], nodes: Sequence[Node],
               switches: Sequence[Switch], appliances: Sequence[Appliance]) -> list[RackFeeds]:
    """Feeds, PDUs and outlets of every rack that holds a device, in rack order."""
    by_rack = _devices(catalog, nodes, switches, appliances)
    out: list[RackFeeds] = []
    # Racks of the same PDUs holding the same kinds of device in the same order load them
    # the same way (thousands of identical GPU racks at GW scale): planned once each.
    loads: dict[tuple[int, int, tuple[tuple[float, int, str], ...]], _Load] = {}
    for r in racks:
        devices = by_rack.get(r.name)
        if not devices:
            continue
        spec = catalog.pdus.get(r.pdu)
        if spec is None:
            raise PlanError(f"rack {r.name} references unknown PDU type {r.pdu!r} "
                            f"(known: {', '.join(sorted(catalog.pdus))})")
        feed_of = [FEEDS[i % 2] for i in range(r.pdus)]
        on = {f: [i for i, x in enumerate(feed_of) if x == f] for f in FEEDS}
        sig = (spec.phases, r.pdus, tuple((d.max_kw, d.psus, d.inlet) for d in devices))
        got = loads.get(sig)
        if got is None:
            got = loads[sig] = _load(*sig)
        kw, phase, used, one_idx = got
        one_feed = [devices[i].name for i in one_idx]
        names = pdu_names(r)
        pdus = [Pdu(names[i], spec.name,
                    feed_of[i], round(kw[i], 3), used[i]["c13"], used[i]["c19"],
                    tuple(round(x, 3) for x in phase[i])) for i in range(r.pdus)]
        imbalance = 0.0
        if spec.phases > 1:
            for ph in phase:
                mean = sum(ph) / len(ph)
                if mean > 0:
                    imbalance = max(imbalance, (max(ph) - min(ph)) / mean * 100)
        load = round(sum(d.max_kw for d in devices), 3)
        out.append(RackFeeds(
            r.name, spec.name, pdus, round(min(len(on[f]) for f in FEEDS) * spec.feed_kw, 3),
            load, (sum(u["c13"] for u in used), r.pdus * spec.outlets_c13),
            (sum(u["c19"] for u in used), r.pdus * spec.outlets_c19), round(imbalance, 1),
            one_feed))
    return out
