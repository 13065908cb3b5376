"""SVG pictures: the compute fabric (tiers, planes, bundled links) and rack elevations."""

from __future__ import annotations

from collections import Counter
from xml.sax.saxutils import escape

from provision.plan.build import Plan

TIER_ORDER = ("core", "spine", "leaf", "agg", "tor")


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">\n'
            f"<title>{escape(title)}</title>\n" + "\n".join(body) + "\n</svg>\n")


def fabric_svg(plan: Plan) -> str:
    """Compute fabric by tier and plane: one box per group of switches, bundles with counts."""
    fab = plan.fabrics.get("compute")
    title = f"{plan.site.site.name} compute fabric"
    if fab is None:
        return _svg(300, 40, ['<text x="10" y="25">no compute fabric</text>'], title)
    def group(name: str) -> str:
        sw = by_name[name]
        plane = f"p{sw.plane} " if sw.plane is not None else ""
        if sw.su is not None:
            return f"{plane}{sw.tier} su{sw.su:02d}"
        if sw.pod is not None:
            return f"{plane}{sw.tier} pod{sw.pod:02d}"
        return f"{plane}{sw.tier}"
    by_name = {s.name: s for s in fab.switches}
    groups = Counter(group(s.name) for s in fab.switches)
    nodes_by_group: Counter[str] = Counter()
    bundles: Counter[tuple[str, str]] = Counter()
    for lk in fab.links:
        upper = group(lk.b)
        lower = group(lk.a) if lk.a in by_name else ("ufm" if lk.a == "ufm" else "nodes")
        if lower == "nodes":
            nodes_by_group[upper] += 1
        bundles[(lower, upper)] += 1
    tiers: dict[str, list[str]] = {}
    for g in sorted(groups):
        tiers.setdefault(g.split()[-2] if g.split()[-1].startswith(("su", "pod")) else
                         g.split()[-1], []).append(g)
    rows = [t for t in TIER_ORDER if t in tiers] + ["nodes"]
    tiers["nodes"] = ["nodes"] + (["ufm"] if any(k[0] == "ufm" for k in bundles) else [])
    box_w, gap = 120, 16
    width = max(len(v) for v in tiers.values()) * (box_w + gap) + gap
    pos: dict[str, tuple[int, int]] = {}
    body: list[str] = []
    for r, tier in enumerate(rows):
        y = 30 + r * 110
        for i, g in enumerate(tiers[tier]):
            x = gap + i * (box_w + gap)
            pos[g] = (x + box_w // 2, y)
            label = f"{g} x{groups[g]}" if g in groups else g
            body.append(f'<rect x="{x}" y="{y}" width="{box_w}" height="34" rx="4" '
                        f'fill="#eef" stroke="#447"/><text x="{x + 6}" y="{y + 21}">'
                        f"{escape(label)}</text>")
    lines = []
    for (lo, up), n in sorted(bundles.items()):
        if lo in pos and up in pos:
            (x1, y1), (x2, y2) = pos[lo], pos[up]
            lines.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2 + 34}" stroke="#88a" '
                         f'stroke-width="{min(6, 1 + n // 64)}"><title>{escape(lo)} - '
                         f"{escape(up)}: {n} links</title></line>")
    legend = (f'<text x="{gap}" y="18">{escape(title)}: {fab.topology}, {fab.tiers} tiers, '
              f"{len(fab.switches)} switches, {len(fab.links)} links</text>")
    return _svg(width, 30 + len(rows) * 110, [legend, *lines, *body], title)


def racks_svg(plan: Plan) -> str:
    """Elevation of every rack holding equipment, with its power draw against budget."""
    title = f"{plan.site.site.name} rack elevations"
    used: dict[str, list[tuple[int, int, str, str]]] = {}
    for n in plan.nodes:
        used.setdefault(n.rack, []).append((n.u, n.rack_units, n.name, "#cde"))
    for s in plan.switches:
        if s.rack:
            used.setdefault(s.rack, []).append(
                (s.u, plan.catalog.switches[s.model].rack_units, s.name, "#edc"))
    power = {r.rack: r for r in plan.power.racks}
    racks = [r for r in plan.racks if r.name in used]
    unit, rw, gap = 8, 150, 20
    tall = max((r.size_u for r in racks), default=1)
    body = []
    for i, r in enumerate(racks):
        x = gap + i * (rw + gap)
        top = 40
        p = power[r.name]
        colour = "#c33" if p.nameplate_kw > p.budget_kw else "#333"
        body.append(f'<text x="{x}" y="20">{escape(r.name)}</text>'
                    f'<text x="{x}" y="34" fill="{colour}">{p.nameplate_kw:g}/{p.budget_kw:g} kW '
                    f"{escape(r.cooling)}</text>"
                    f'<rect x="{x}" y="{top}" width="{rw}" height="{r.size_u * unit}" '
                    'fill="none" stroke="#333"/>')
        for u, units, name, fill in sorted(used[r.name]):
            y = top + (r.size_u - (u + units - 1)) * unit
            body.append(f'<rect x="{x + 2}" y="{y}" width="{rw - 4}" height="{units * unit - 1}" '
                        f'fill="{fill}" stroke="#666"/><text x="{x + 6}" y="{y + 8}" '
                        f'font-size="7">U{u} {escape(name)}</text>')
    width = gap + len(racks) * (rw + gap)
    return _svg(max(width, 200), tall * unit + 60, body, title)
