"""Fabric diagram: one panel per fabric, switches grouped by tier and plane / SU / pod (ToRs by
row), endpoints grouped by node group (and SU), one bundle per connected pair of groups with
its link and cable count, and every group's ports: used and free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from provision.plan.build import Plan
from provision.plan.fabric import FabricPlan, Switch
from provision.render.pictures.devices import KINDS, Placed
from provision.render.pictures.svg import (
    Svg,
    fit,
    group,
    plural,
    text_width,
    thousands,
    tooltip,
)

TIERS = ("site-core", "core", "spine", "agg", "leaf", "tor")
BOX_MIN_W = 150.0
BOX_H = 54.0
GAP = 14.0
TIER_GAP = 96.0
MARGIN = 16.0
SWITCH_STYLE = {"core": "#f9cb9c", "spine": "#fce5cd", "leaf": "#fdf1e3", "agg": "#fce5cd",
                "tor": "#fdf1e3"}
FABRIC_TITLES = {"compute": "compute fabric", "storage": "storage network",
                 "inband": "in-band network", "oob": "out-of-band network"}


@dataclass
class _Group:
    key: str
    label: str
    tier: str
    order: tuple[object, ...]
    members: set[str] = field(default_factory=set)
    model: str = ""
    ports: int = 0
    used: int = 0
    nodes: bool = False
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0


def fabric_svg(plan: Plan, contents: Mapping[str, list[Placed]]) -> str:
    """``fabric.svg``: every fabric of the plan, compute first."""
    title = f"{plan.site.site.name}: fabrics (switch groups, bundles with link counts, ports)"
    doc = Svg(0, 0, title)
    doc.add(doc.text(MARGIN, 24, title, 15, weight="bold"))
    y = 40.0
    width = text_width(title, 15, bold=True) + 2 * MARGIN
    names = sorted(plan.fabrics, key=lambda n: (n != "compute", list(FABRIC_TITLES).index(n)
                                                if n in FABRIC_TITLES else 99, n))
    if not names:
        doc.add(doc.text(MARGIN, 60, "this site has no fabrics", 12))
        y = 70
    for name in names:
        y, w = _panel(doc, plan, plan.fabrics[name], y, contents)
        width = max(width, w)
    doc.width, doc.height = width, y + MARGIN
    return doc.render()


def _switch_group(s: Switch, row_of: dict[str, str]) -> tuple[str, str, tuple[object, ...]]:
    bits = [s.tier]
    order: tuple[object, ...] = (s.plane or 0, s.su or 0, s.pod or 0)
    if s.plane is not None:
        bits.append(f"plane {s.plane}")
    if s.su is not None:
        bits.append(f"SU {s.su}")
    if s.pod is not None:
        bits.append(f"pod {s.pod}")
    if s.tier == "tor" and s.rack:
        bits.append(f"row {row_of[s.rack]}")
        order = (row_of[s.rack],)
    label = " · ".join(bits)
    return label, label, order


def _end_key(end: str, up: Switch | None, node_group: dict[str, str],
             kind: dict[str, str]) -> str:
    """An endpoint's group as seen from the switch it is cabled to: its node group (or device
    kind), and the SU / plane of that switch, so each plane's NICs form their own tree."""
    base = node_group.get(end)
    if base is None:
        # a device of another kind on this fabric: a switch's or appliance's management port
        base = f"{KINDS[kind[end]].label} mgmt ports" if end in kind else end
    if up is not None and up.su is not None:
        base += f" · SU {up.su}"
    if up is not None and up.plane is not None:
        base += f" · plane {up.plane}"
    return base


def _groups(plan: Plan, fab: FabricPlan, contents: Mapping[str, list[Placed]],
            ) -> tuple[dict[str, _Group], dict[object, str]]:
    """Groups by key, and end -> group key for every end of the fabric's links: a switch by
    its name, an endpoint by (its name, the switch it is cabled to)."""
    row_of = {r.name: r.row if len(plan.site.halls) == 1 else f"{r.hall}/{r.row}"
              for r in plan.racks}
    groups: dict[str, _Group] = {}
    of: dict[object, str] = {}
    sw = {s.name: s for s in fab.switches}
    for s in fab.switches:
        key, label, order = _switch_group(s, row_of)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group(key, label, s.tier, order, model=s.model)
        elif g.model != s.model:
            g.model = "mixed"
        g.members.add(s.name)
        g.ports += plan.catalog.switches[s.model].ports
        of[s.name] = key
    node_group = {n.name: n.group for n in plan.nodes}
    kind = {d.name: d.kind for ds in contents.values() for d in ds}
    kind.update((p.name, "pdu") for f in plan.power.feeds for p in f.pdus)  # 0U: no U drawn
    for lk in fab.links:
        if lk.a in of and lk.b in of:
            continue
        end, up = (lk.a, sw.get(lk.b)) if lk.a not in of else (lk.b, sw.get(lk.a))
        key = _end_key(end, up, node_group, kind)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group(key, key, "", (end not in node_group,
                                                   up.plane or 0 if up else 0,
                                                   up.su or 0 if up else 0),
                                        nodes=end in node_group)
        g.members.add(end)
        of[(end, up.name if up else "")] = key
    return groups, of


def _bundles(of: dict[object, str], ends: Iterable[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """How many of ``ends`` (link or cable ends ``(a, b)``) run between each pair of groups.

    A switch's group is ``of[name]``, an endpoint's ``of[(name, its switch)]``. Counted in
    one C-level pass (``Counter`` over a generator, the lookups inline): half a million
    links per fabric at 131,072 GPUs, where a function call per end was a second.
    """
    get = of.get
    return Counter(
        (ka if (ka := get(a)) is not None else of[(a, b)],
         kb if (kb := get(b)) is not None else of[(b, a)])
        for a, b in ends)


def _panel(doc: Svg, plan: Plan, fab: FabricPlan, y: float,
           contents: Mapping[str, list[Placed]]) -> tuple[float, float]:
    groups, of = _groups(plan, fab, contents)
    links = _bundles(of, ((lk.a, lk.b) for lk in fab.links))
    for (a, b), n in links.items():
        groups[a].used += n
        groups[b].used += n
    name = fab.name
    cables = _bundles(of, ((c.a, c.b) for c in plan.cables  # physical cables: a twin DAC once
                           if c.fabric == name and c.cable == c.id))
    tiers = [t for t in TIERS if any(g.tier == t for g in groups.values())]
    tiers += sorted({g.tier for g in groups.values()} - set(tiers) - {""}) + [""]
    rows = [sorted((g for g in groups.values() if g.tier == t),
                   key=lambda g: (g.order, g.key)) for t in tiers]
    rows = [r for r in rows if r]
    n_max = max(len(r) for r in rows)
    box_w = max(BOX_MIN_W, *(_box_text_w(g) for g in groups.values()))
    inner_w = n_max * box_w + (n_max - 1) * GAP
    tech = "InfiniBand" if fab.name in plan.ib_names() else "Ethernet"
    head = (f"{FABRIC_TITLES.get(fab.name, fab.name + ' fabric')} ({tech}): {fab.topology}, "
            f"{plural(fab.tiers, 'tier')}, {plural(len(fab.switches), 'switch')}, "
            f"{plural(len(fab.links), 'link')}")
    out = [doc.text(MARGIN, y + 22, head, 13, weight="bold")]
    top = y + 36
    for i, row in enumerate(rows):
        w = (inner_w - (len(row) - 1) * GAP) / len(row)
        for j, g in enumerate(row):
            g.x, g.y, g.w = MARGIN + j * (w + GAP), top + i * (BOX_H + TIER_GAP), w
    # the group boxes are obstacles too: a count never covers a box's label (a bundle that
    # skips a tier runs behind the box between its ends)
    placed = [(g.x, g.y, g.x + g.w, g.y + BOX_H) for row in rows for g in row]
    lines: list[str] = []
    labels: list[str] = []
    for (a, b), n in sorted(links.items()):
        lo, up = groups[a], groups[b]
        nc = cables.get((a, b), 0)
        if a == b:
            # patch cords inside one group (an OOB switch's mgmt0 into its own or its peer's
            # front port): a short stub under the box's right end, with its count
            words = f"{plural(n, 'link')} within"
            x, y1 = lo.x + lo.w - 40, lo.y + BOX_H
            lines.append(doc.line(x, y1, x, y1 + 24, "#7f8fa6", 1.2,
                                  f' data-links="{n}" data-cables="{nc}"',
                                  tip=f"{a}: {words} the group"))
            labels.append(_place(doc, placed, x, y1 + 12, x, y1 + 12, words))
            continue
        if lo.y < up.y:
            lo, up = up, lo
        x1, x2 = _ends(lo, up)
        y1, y2 = lo.y, up.y + BOX_H
        width = 1.2 + min(6.0, n / 128)
        words = plural(n, "link") + (f" on {plural(nc, 'cable')}" if nc != n else "")
        lines.append(doc.line(x1, y1, x2, y2, "#7f8fa6", width,
                              f' data-links="{n}" data-cables="{nc}"',
                              tip=f"{a} — {b}: {words}"))
        labels.append(_place(doc, placed, x1, y1, x2, y2, words))
    boxes = [_box(doc, g) for row in rows for g in row]
    out += [group({"class": "bundles"}, lines), *boxes, group({"class": "counts"}, labels)]
    bottom = top + len(rows) * (BOX_H + TIER_GAP) - TIER_GAP + 20
    doc.add(group({"class": "fabric", "data-fabric": fab.name}, out))
    return bottom, MARGIN * 2 + max(inner_w, text_width(head, 13, bold=True))


def _ends(lo: _Group, up: _Group) -> tuple[float, float]:
    """Where a bundle leaves the lower box and enters the upper one: straight up through the
    middle of their common width when they share one, else toward each other's centre."""
    left, right = max(lo.x, up.x), min(lo.x + lo.w, up.x + up.w)
    if right - left >= 16:
        return (left + right) / 2, (left + right) / 2
    return (min(max(up.x + up.w / 2, lo.x + 8), lo.x + lo.w - 8),
            min(max(lo.x + lo.w / 2, up.x + 8), up.x + up.w - 8))


def _box_text_w(g: _Group) -> float:
    return max(text_width(g.label, 10.5), text_width(_ports_line(g), 9.5)) + 14


def _ports_line(g: _Group) -> str:
    if not g.ports:
        return f"{plural(g.used, 'port')} cabled"
    free = g.ports - g.used
    return f"{thousands(g.ports)} ports: {thousands(g.used)} used, {thousands(free)} free"


def _box(doc: Svg, g: _Group) -> str:
    fill = SWITCH_STYLE.get(g.tier, "#eef3f8") if g.tier else "#dde8f3"
    stroke = "#b45f06" if g.tier else "#3d6d99"
    cx = g.x + g.w / 2
    n = len(g.members)
    noun = "node" if g.nodes else "device"
    what = f"{thousands(n)} × {g.model}" if g.tier else plural(n, noun)
    free = g.ports - g.used
    out = [tooltip(f"{g.label}: {what}; {_ports_line(g)}"),
           doc.rect(g.x, g.y, g.w, BOX_H, fill, stroke, ' rx="4"'),
           doc.text(cx, g.y + 16, fit(g.label, g.w - 8, 10.5), 10.5, anchor="middle",
                    weight="bold"),
           doc.text(cx, g.y + 31, fit(what, g.w - 8, 10), 10, anchor="middle"),
           doc.text(cx, g.y + 46, fit(_ports_line(g), g.w - 8, 9.5), 9.5, anchor="middle",
                    fill="#2e7d32" if g.tier and free > 0 else "#444")]
    attrs = {"class": "group", "data-group": g.key, "data-members": str(n),
             "data-ports": str(g.ports), "data-used": str(g.used)}
    return group(attrs, out)


def _place(doc: Svg, placed: list[tuple[float, float, float, float]], x1: float, y1: float,
           x2: float, y2: float, words: str) -> str:
    """A count label on its bundle where it overlaps no other label and no group box; where
    every spot overlaps one, at the bundle's middle (a count is never left out)."""
    size = 9.5
    w, h = text_width(words, size) + 6, size + 5
    spots = (0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.1, 0.9, 0.25, 0.75, 0.35, 0.65)
    for t in (*spots, None):
        cx, cy = x1 + (x2 - x1) * (t or 0.5), y1 + (y2 - y1) * (t or 0.5)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if t is None or all(box[2] <= p[0] or box[0] >= p[2] or box[3] <= p[1]
                            or box[1] >= p[3] for p in placed):
            placed.append(box)
            return group({"class": "count"}, [
                doc.rect(box[0], box[1], w, h, "#ffffff", "#c5ccd6", ' rx="3"'),
                doc.text(cx, cy + size / 2 - 1, words, size, anchor="middle")])
    raise AssertionError("unreachable: the last spot is always taken")
