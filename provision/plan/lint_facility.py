"""Lint rules about the floor and the racks: rows that stand on each other, node groups that
share rack units, a PUE target the climate cannot deliver, and nodes whose PSUs on one feed
cannot carry them."""

from __future__ import annotations

from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.layout import RACK_DEPTH_M
from provision.plan.lintbase import Finding, finding, placed_nodes, rule

PUE_RANGE: dict[str, tuple[float, float]] = {
    "cold": (1.04, 1.5),
    "temperate": (1.07, 1.6),
    "hot": (1.15, 1.8),
}
"""Design PUE a new site of each climate class plausibly reaches (best, worst).

The best published fleet and campus figures sit near 1.06-1.10 (free-cooled sites in cold
and temperate climates); hot and humid climates need mechanical cooling most of the year
and rarely design below ~1.2 (Singapore's green data-centre standard targets 1.3). Above
the upper bound the site wastes a third or more of its power on cooling and losses.
"""

_EPS = 1e-6


@rule
def group_overlap(ls: LoadedSite) -> Iterator[Finding]:
    """GPU114: two node groups' nodes in the same rack units of one rack."""
    nodes = placed_nodes(ls)
    if nodes is None:
        return
    gi = {g.name: i for i, g in enumerate(ls.site.node_groups)}
    by_rack: dict[str, list[tuple[int, int, str, str]]] = {}
    for n in nodes:
        by_rack.setdefault(n.rack, []).append((n.u, n.u + n.rack_units - 1, n.group, n.name))
    for rack, used in by_rack.items():
        used.sort()
        reported: set[tuple[str, str]] = set()
        for i, (lo, hi, group, host) in enumerate(used):
            for lo2, hi2, group2, host2 in used[i + 1:]:
                if lo2 > hi:
                    break
                if group2 == group:
                    continue  # GPU113 covers slots of one group
                later, earlier = sorted([(gi[group], group, host, lo, hi),
                                         (gi[group2], group2, host2, lo2, hi2)])[::-1]
                if (later[1], earlier[1]) in reported:
                    continue
                reported.add((later[1], earlier[1]))
                yield finding(
                    "GPU114", f"node group {later[1]}: {later[2]} at U{later[3]}-U{later[4]} of "
                    f"rack {rack} overlaps {earlier[2]} of group {earlier[1]} at "
                    f"U{earlier[3]}-U{earlier[4]}",
                    "give the groups different rows, first_rack or u_positions",
                    "node_groups", later[0], "placement", "u_positions", subject=rack)


@rule
def floor_positions(ls: LoadedSite) -> Iterator[Finding]:
    """GPU115: two rows (of one hall or of two halls) on the same piece of floor."""
    rows: list[tuple[int, int, str, str, float, float, float]] = []
    for h_i, h in enumerate(ls.site.halls):
        for r_i, r in enumerate(h.rows):
            start = h.x_m + r.x_m
            rows.append((h_i, r_i, h.name, r.name, start, start + r.racks * r.rack_pitch_m,
                         h.y_m + r.y_m))
    for i, (hi, ri, hall, row, x0, x1, y) in enumerate(rows):
        for hj, _rj, hall2, row2, a0, a1, y2 in rows[:i]:
            if abs(y - y2) < RACK_DEPTH_M - _EPS and x0 < a1 - _EPS and a0 < x1 - _EPS:
                this = f"row {row}" + (f" of hall {hall}" if hall2 != hall else "")
                other = f"row {row2}" + (f" of hall {hall2}" if hall2 != hall else "")
                where = (f"halls {hall2} and {hall} overlap on the campus plan"
                         if hj != hi else f"both in hall {hall}")
                hint = ("move the hall's x_m/y_m so its floor does not overlap the other's"
                        if hj != hi else f"put the rows at least {RACK_DEPTH_M:g} m (a rack's "
                        "depth) apart in y_m, or side by side with x_m")
                yield finding(
                    "GPU115", f"{this} (x {x0:g}-{x1:g} m, y {y:g} m) stands on the same "
                    f"floor as {other} (x {a0:g}-{a1:g} m, y {y2:g} m): {where}", hint,
                    *(("halls", hi, "y_m") if hj != hi else ("halls", hi, "rows", ri, "y_m")),
                    subject=f"row {row}")
                break


@rule
def pue_for_climate(ls: LoadedSite) -> Iterator[Finding]:
    """GPU109 (warning): a PUE target outside what the climate class plausibly reaches."""
    info = ls.site.site
    best, worst = PUE_RANGE[info.climate]
    if info.pue_target < best - _EPS:
        yield finding(
            "GPU109", f"PUE target {info.pue_target:g} is below what a {info.climate} site "
            f"reaches (plausible: {best:g}-{worst:g}); the facility power and energy cost "
            "are understated", f"use a PUE of at least {best:g} for a {info.climate} climate, "
            "or correct site.climate", "site", "pue_target", severity="warning")
    elif info.pue_target > worst + _EPS:
        yield finding(
            "GPU109", f"PUE target {info.pue_target:g} is above what a new {info.climate} "
            f"site should need (plausible: {best:g}-{worst:g})", "check the cooling design "
            "or the PUE figure", "site", "pue_target", severity="warning")


@rule
def feed_loss_power_cap(ls: LoadedSite) -> Iterator[Finding]:
    """GPU110 (warning): a node type whose PSUs on one feed (half of them, as the planner
    spreads them over A and B) deliver less than its maximum draw: a feed loss leaves every
    such node running power-capped, at reduced performance, until the feed is back."""
    for i, g in enumerate(ls.site.node_groups):
        t = ls.catalog.nodes.get(g.type)
        if t is None or t.psu_kw is None or t.psus < 2:
            continue
        half = t.psus // 2
        if half * t.psu_kw + _EPS >= t.max_power_kw:
            continue
        yield finding(
            "GPU110", f"node group {g.name} ({g.type}): on a feed loss its {half} of "
            f"{t.psus} PSUs on the other feed deliver {half * t.psu_kw:g} kW of its "
            f"{t.max_power_kw:g} kW maximum, so every node runs power-capped (reduced "
            "GPU clocks, slower jobs) until the feed is back",
            "nothing to change if that is acceptable (the vendor's 4+2 rating); otherwise "
            "use a node type whose PSUs on one feed carry its maximum (psus/2 x psu_kw)",
            "node_groups", i, "type", subject=g.name, severity="warning")
