"""Lint rules over the built plan's devices: redundant switch pairs that share a rack.

These run on the Plan (lint builds it once), because where a switch lands depends on the
space and power every other device left.
"""

from __future__ import annotations

from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.build import Plan
from provision.plan.lintbase import Finding, finding

ETHERNET = ("storage", "inband", "oob")
TIER_NAME = {"agg": "aggregation", "core": "core"}


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
