"""Lint rules over the built plan's devices: redundant switch pairs that share a rack, power
as delivered (A/B feeds, PDUs, outlets) and Ethernet tiers oversubscribed past the limit.

The pair and feed rules run on the Plan (lint builds it once), because where a switch lands
depends on the space and power every other device left; ``unknown_pdu`` runs before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.build import Plan
from provision.plan.lintbase import Finding, finding, rule
from provision.plan.oversubscription import TierRatio, limit, ratio_text, ratios

ETHERNET = ("storage", "inband", "oob")
TIER_NAME = {"agg": "aggregation", "core": "core", "site-core": "site core"}


def pair_findings(ls: LoadedSite, plan: Plan) -> Iterator[Finding]:
    """GPU116: the two switches of an aggregation or core pair in one rack (one failure
    domain) when the fabric does not say ``pairs_in_one_rack: true``."""
    for fname in ETHERNET:
        cfg = getattr(ls.site.fabrics, fname)
        fab = plan.fabrics.get(fname)
        if cfg is None or fab is None or cfg.pairs_in_one_rack:
            continue
        pairs: dict[tuple[str, int | None], list[tuple[str, str]]] = {}
        for s in fab.switches:
            if s.tier in TIER_NAME:
                pairs.setdefault((s.tier, s.pod), []).append((s.name, s.rack))
        net_racks = {s.rack for s in fab.switches if s.tier in TIER_NAME}
        for (tier, _pod), members in pairs.items():
            racks = {r for _, r in members}
            if len(members) < 2 or len(racks) > 1:
                continue
            rack = next(iter(racks))
            names = "/".join(n for n, _ in members)
            why = (f"{fname}.network_racks gives one rack" if len(cfg.network_racks) == 1
                   and "/" not in cfg.network_racks[0] else
                   "no other network rack had room and power for it" if len(net_racks) > 1
                   or len(cfg.network_racks) > 1 else "it has no other network rack")
            loc = ("fabrics", fname, "network_racks") if cfg.network_racks else \
                ("fabrics", fname)
            yield finding(
                "GPU116", f"{fname} fabric: {TIER_NAME[tier]} pair {names} shares rack "
                f"{rack} ({why}): one rack's power or fault takes both down",
                f"list a second network rack in fabrics.{fname}.network_racks (with room and "
                f"power), or set fabrics.{fname}.pairs_in_one_rack: true to accept one "
                "failure domain", *loc, subject=names)


def _rack_loc(ls: LoadedSite) -> dict[str, tuple[int, int]]:
    """Rack name -> (hall index, row index) in the site file."""
    out: dict[str, tuple[int, int]] = {}
    for hi, h in enumerate(ls.site.halls):
        for ri, row in enumerate(h.rows):
            for i in range(1, row.racks + 1):
                out[row.rack_names.format(hall=h.name, row=row.name, index=i)] = (hi, ri)
    return out


def feed_findings(ls: LoadedSite, plan: Plan) -> Iterator[Finding]:
    """GPU106 a rack's load over what one feed delivers (N+N) · GPU107 too few PDU outlets
    of a type for the PSUs on them · GPU108 PSUs not spread over both feeds."""
    where = _rack_loc(ls)
    for f in plan.power.feeds:
        hi, ri = where[f.rack]
        spec = plan.catalog.pdus[f.model]
        per_feed = len(f.pdus) // 2
        if per_feed == 0:
            what = "no PDU" if not f.pdus else "one PDU (feed A only)"
            yield finding(
                "GPU108", f"rack {f.rack} has {what}: the PSUs of its {len(f.one_feed)} "
                "devices are not spread over an A and a B feed, so one feed or PDU fault "
                "takes the rack down", "set pdus: 2 (or more, an even number) in the rack spec",
                "halls", hi, "rows", ri, "rack", "pdus", subject=f.rack)
            continue
        if f.load_kw > f.one_feed_kw + 1e-9:
            yield finding(
                "GPU106", f"rack {f.rack} draws {f.load_kw:g} kW nameplate, but with one feed "
                f"down the other feed's {per_feed} x {f.model} deliver {f.one_feed_kw:g} kW "
                "(each feed must carry the rack alone: N+N)",
                "use a larger pdu, more pdus per rack (2 per feed), or less load per rack",
                "halls", hi, "rows", ri, "rack", "pdu", subject=f.rack)
        for pdu in f.pdus:
            for kind, used, have in (("C13", pdu.c13, spec.outlets_c13),
                                     ("C19", pdu.c19, spec.outlets_c19)):
                if used > have:
                    yield finding(
                        "GPU107", f"PDU {pdu.name} ({f.model}) needs {used} {kind} outlets "
                        f"for the PSUs on feed {pdu.feed}, it has {have}",
                        f"use a pdu with more {kind} outlets or more pdus per rack",
                        "halls", hi, "rows", ri, "rack", "pdu", subject=pdu.name)
        for name in f.one_feed:
            yield finding(
                "GPU108", f"{name} in rack {f.rack} has one PSU: it sits on one feed, so "
                "that feed's loss takes it down", "use a model with two PSUs (catalog psus) "
                "for anything that must survive a feed loss", "halls", hi, "rows", ri,
                "rack", "pdus", subject=name)


def oversubscription_findings(ls: LoadedSite, plan: Plan) -> Iterator[Finding]:
    """GPU155 (warning): a ToR or aggregation tier whose worst switch has more downlink than
    uplink bandwidth than the network allows (``max_oversubscription``, or the default)."""
    for r in ratios(plan.site, plan.catalog, plan.fabrics, plan.nodes):
        most = limit(plan.site, r.fabric)
        if most is None or r.ratio <= most + 1e-9:
            continue
        cfg = getattr(ls.site.fabrics, r.fabric)
        to = ("aggregation" if r.tier == "tor" else "core (traffic between blocks or halls)"
              if r.tier == "agg" else "site core (traffic between halls)")
        fix = ("more ToR uplink bandwidth (faster uplink_gbps) or fewer node ports per ToR"
               if r.tier == "tor" else
               f"raise fabrics.{r.fabric}.core_uplinks (now {cfg.core_uplinks}) to "
               f"{_uplinks_for(r, most, cfg.core_uplinks)}")
        yield finding(
            "GPU155", f"{r.fabric} network: {r.tier} tier oversubscribed "
            f"{ratio_text(r.ratio)} toward the {to} ({r.switch}: {r.down_gbps:,} Gb/s down, "
            f"{r.up_gbps:,} Gb/s up), over the {ratio_text(most)} limit: traffic that "
            "leaves the switch gets that share of line rate when every port is busy",
            f"{fix}, or set fabrics.{r.fabric}.max_oversubscription",
            "fabrics", r.fabric, subject=r.switch, severity="warning")


def _uplinks_for(r: TierRatio, most: float, now: int) -> int:
    """The even core_uplinks that bring ``r`` within ``most`` (each uplink as fast as now)."""
    need = math.ceil(r.down_gbps / (r.up_gbps / now * most) - 1e-9)
    return need + need % 2


@rule
def unknown_pdu(ls: LoadedSite) -> Iterator[Finding]:
    """GPU117: a rack spec names a PDU the catalog does not have."""
    known = ls.catalog.pdus
    for hi, h in enumerate(ls.site.halls):
        for ri, row in enumerate(h.rows):
            if row.rack.pdu not in known:
                yield finding("GPU117", f"row {row.name} of hall {h.name}: unknown PDU type "
                              f"{row.rack.pdu!r}", f"use one of {', '.join(sorted(known))} "
                              "(gpuctl catalog pdus) or add it to a site catalog",
                              "halls", hi, "rows", ri, "rack", "pdu")
