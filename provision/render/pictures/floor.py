"""Floor plan per hall, to scale: every rack at its floor position, twice — coloured by what
it holds (with the cable trays the plan's inter-rack cables fill) and by power headroom (with
its nameplate kW) — and a table of the cable runs between rows.

Trays follow the plan's run model (``plan/cabling.py``: Manhattan distance): a cable leaves
its rack into the tray in front of its row, runs along the row to the far rack's position and
crosses the aisles there. Each tray segment is drawn as thick as the cables it carries.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from provision.plan.build import Plan
from provision.plan.layout import Rack
from provision.render.pictures.devices import KINDS, Placed, rack_kind
from provision.render.pictures.svg import (
    HEADROOM,
    NO_LOAD,
    Style,
    Svg,
    fit,
    group,
    headroom_style,
    legend,
    plural,
    text_width,
    thousands,
    tooltip,
)

RACK_DEPTH_M = 1.2
"""Footprint depth drawn for every rack (the model has only the row pitch, its width)."""
TRAY_OFFSET_M = RACK_DEPTH_M + 0.45
"""Tray line: in the aisle in front of each row."""
MIN_RACK_PX = 30.0
MARGIN = 20.0
ROW_LABEL_W = 58.0
FLOOR_KINDS: dict[str, Style] = {
    "gpu": KINDS["gpu"],
    "storage": KINDS["storage"],
    "service": KINDS["service"],
    "network": Style("#fce5cd", "#b45f06", "network"),
    "empty": Style("#ffffff", "#aaaaaa", "empty"),
}
TRAY = "#5b7083"
PANEL_TITLES = ("what each rack holds; trays with cable counts",
                "power headroom; number = nameplate kW")


@dataclass
class _Frame:
    """Metres -> pixels for one hall panel."""

    x0: float
    y0: float
    left: float
    top: float
    scale: float

    def x(self, m: float) -> float:
        return self.left + (m - self.x0) * self.scale

    def y(self, m: float) -> float:
        return self.top + (m - self.y0) * self.scale


def floor_plans(plan: Plan, contents: Mapping[str, list[Placed]]) -> dict[str, str]:
    """``floor/<hall>.svg`` for every hall."""
    halls: dict[str, list[Rack]] = {}
    for r in plan.racks:
        halls.setdefault(r.hall, []).append(r)
    runs = _runs(plan)
    return {f"floor/{h}.svg": hall_plan(plan, h, racks, contents, runs.get(h, {}))
            for h, racks in halls.items()}


def _pitches(plan: Plan) -> dict[tuple[str, str], float]:
    return {(h.name, row.name): row.rack_pitch_m for h in plan.site.halls for row in h.rows}


def hall_plan(plan: Plan, hall: str, racks: list[Rack], contents: Mapping[str, list[Placed]],
              runs: dict[tuple[str, str], _Run]) -> str:
    """``floor/<hall>.svg``; ``runs``: the hall's inter-rack cables (see ``_runs``)."""
    pitch = _pitches(plan)
    width_m = {r.name: pitch[(r.hall, r.row)] for r in racks}
    x0 = min(r.x for r in racks)
    y0 = min(r.y for r in racks)
    x1 = max(r.x + width_m[r.name] for r in racks)
    y1 = max(r.y for r in racks) + TRAY_OFFSET_M + 0.3
    scale = max(40.0, MIN_RACK_PX / min(width_m.values()))
    panel_w = max(ROW_LABEL_W + (x1 - x0) * scale + 110,  # + tray labels
                  text_width(PANEL_TITLES[0], 12, bold=True) + 24, 330.0)
    panel_h = (y1 - y0) * scale
    power = {p.rack: p for p in plan.power.racks}
    cap = next(h.power_capacity_kw for h in plan.site.halls if h.name == hall)
    load = sum(power[r.name].nameplate_kw for r in racks)
    title = f"{plan.site.site.name}: hall {hall} — floor plan (to scale, top view)"
    width = max(2 * panel_w + 3 * MARGIN, 760.0, text_width(title, 15, bold=True) + 2 * MARGIN)
    doc = Svg(width, 0, title)
    doc.add(doc.text(MARGIN, 24, title, 15, weight="bold"))
    equipped = sum(1 for r in racks if contents.get(r.name))
    doc.add(doc.text(MARGIN, 42, f"{plural(len(racks), 'rack')} ({equipped} equipped); nameplate "
                     f"{thousands(round(load))} kW of the hall's {thousands(cap)} kW", 11,
                     fill="#444"))
    top = 56.0
    kinds = {r.name: rack_kind(contents.get(r.name, [])) for r in racks}
    left_legend = [FLOOR_KINDS[k] for k in FLOOR_KINDS if k in kinds.values()]
    h1 = legend(doc, MARGIN, top, "racks", [*left_legend, Style(TRAY, TRAY, "cable tray")],
                panel_w)
    right = MARGIN * 2 + panel_w
    h2 = legend(doc, right, top, "power", [s for _, s in HEADROOM] + [NO_LOAD], panel_w)
    top += max(h1, h2) + 26
    doc.add(doc.text(MARGIN, top - 8, PANEL_TITLES[0], 12, weight="bold"))
    doc.add(doc.text(right, top - 8, PANEL_TITLES[1], 12, weight="bold"))
    f1 = _Frame(x0, y0, MARGIN + ROW_LABEL_W, top, scale)
    f2 = _Frame(x0, y0, right + ROW_LABEL_W, top, scale)
    doc.add(group({"class": "trays"}, _trays(doc, f1, racks, runs)))
    for r in racks:
        doc.add(_rack(doc, f1, r, width_m[r.name], FLOOR_KINDS[kinds[r.name]], r.name,
                      _kind_tip(r, contents.get(r.name, []))))
        p = power[r.name]
        hs = headroom_style(p.nameplate_kw, p.budget_kw)
        doc.add(_rack(doc, f2, r, width_m[r.name], hs, f"{p.nameplate_kw:.0f}" if
                      p.nameplate_kw else "",
                      f"{r.name}: {p.nameplate_kw:g} kW nameplate / {p.budget_kw:g} kW "
                      f"budget, {p.expected_kw:g} kW expected, {r.cooling} cooling",
                      panel="power"))
    for f in (f1, f2):
        _row_labels(doc, f, racks)
    _scale_bar(doc, f1, top + panel_h + 14, (x1 - x0) * scale)
    y = _run_table(doc, MARGIN, top + panel_h + 48, hall, runs, width - 2 * MARGIN)
    doc.height = y + MARGIN
    return doc.render()


def _kind_tip(r: Rack, devices: list[Placed]) -> str:
    kinds = Counter(d.kind for d in devices)
    held = ", ".join(f"{n} {KINDS[k].label}" for k, n in sorted(kinds.items()))
    return f"rack {r.name} (row {r.row}): {held or 'empty'}"


def _rack(doc: Svg, f: _Frame, r: Rack, width_m: float, style: Style, label: str, tip: str,
          panel: str = "kind") -> str:
    x, y = f.x(r.x), f.y(r.y)
    w, h = width_m * f.scale - 2, RACK_DEPTH_M * f.scale
    dash = ' stroke-dasharray="3 2"' if style.fill == "#ffffff" else ""
    out = [tooltip(tip), doc.rect(x + 1, y, w, h, style.fill, style.stroke, dash)]
    if panel == "kind":
        name = label if text_width(label, 9) <= h - 6 else f"{r.index:02d}"
        # rack names read along the rack's depth so neighbours never collide
        cx, cy = x + 1 + w / 2, y + h / 2
        out.append(doc.text(cx + 3, cy, fit(name, h - 4, 9), 9, anchor="middle",
                            extra=f' transform="rotate(-90 {cx:.1f} {cy:.1f})"'))
    else:
        out.append(doc.text(x + 1 + w / 2, y + h / 2 + 3.5, fit(label, w - 2, 9), 9,
                            anchor="middle"))
    return group({"class": f"rack-{panel}", "data-rack": r.name}, out)


def _row_labels(doc: Svg, f: _Frame, racks: list[Rack]) -> None:
    rows: dict[str, Rack] = {}
    for r in racks:
        if r.row not in rows or r.x < rows[r.row].x:
            rows[r.row] = r
    for row, first in rows.items():
        doc.add(doc.text(f.x(first.x) - 6, f.y(first.y) + RACK_DEPTH_M * f.scale / 2 + 4,
                         f"row {row}", 11, anchor="end", weight="bold"))


def _scale_bar(doc: Svg, f: _Frame, y: float, floor_px: float) -> None:
    metres = next((m for m in (10, 5, 2) if m * f.scale <= floor_px * 0.6), 1)
    x = f.left
    w = metres * f.scale
    doc.add(group({"class": "scale"}, [
        doc.rect(x, y, w, 6, "#333"),
        doc.text(x + w + 6, y + 7, f"{metres} m", 10),
    ]))


@dataclass
class _Run:
    """Cables between two rows (or to another hall) and how long they run."""

    src: Rack
    dst: Rack
    cables: int
    run_min: float
    run_max: float
    cable_max: float


def _runs(plan: Plan) -> dict[str, dict[tuple[str, str], _Run]]:
    """Inter-rack physical cables by hall they leave a rack of, then by (that rack, the
    other end's rack): a cable between two halls counts in both. One pass over the cables
    for every hall (a GW-scale site has 16 halls and half a million cables)."""
    every = {r.name: r for r in plan.racks}
    out: dict[str, dict[tuple[str, str], _Run]] = {}
    for c in plan.cables:
        if c.a_rack == c.b_rack or c.cable != c.id:  # count a twin-port DAC (two links) once
            continue
        ra, rb = every[c.a_rack], every[c.b_rack]
        ends = ((ra, rb),) if ra.hall == rb.hall else ((ra, rb), (rb, ra))
        for a, b in ends:
            hall = out.setdefault(a.hall, {})
            key = (a.name, b.name)
            run = hall.get(key)
            if run is None:
                hall[key] = _Run(a, b, 1, c.run_m, c.run_m, c.length_m)
                continue
            run.cables += 1
            run.run_min = min(run.run_min, c.run_m)
            run.run_max = max(run.run_max, c.run_m)
            run.cable_max = max(run.cable_max, c.length_m)
    return out


def _trays(doc: Svg, f: _Frame, racks: list[Rack],
           runs: dict[tuple[str, str], _Run]) -> list[str]:
    """Tray segments with their cable load: along each row, and across aisles; cables to
    another hall leave along their row's tray to the hall's edge."""
    along: Counter[tuple[float, float, float]] = Counter()   # (tray y, x from, x to)
    across: Counter[tuple[float, float, float]] = Counter()  # (x, y from, y to)
    row_end: dict[float, float] = {}
    for r in racks:
        yt = r.y + TRAY_OFFSET_M
        row_end[yt] = max(row_end.get(yt, r.x), r.x)
    edge = max(r.x for r in racks) + 1.0
    per_row: Counter[float] = Counter()
    away: Counter[tuple[float, str]] = Counter()
    for run in runs.values():
        a, b = run.src, run.dst
        ya, yb = a.y + TRAY_OFFSET_M, b.y + TRAY_OFFSET_M
        per_row[ya] += run.cables
        if a.hall != b.hall:
            along[(ya, a.x, edge)] += run.cables
            away[(ya, b.hall)] += run.cables
            continue
        if a.x != b.x:
            along[(ya, min(a.x, b.x), max(a.x, b.x))] += run.cables
        if ya != yb:
            across[(b.x, min(ya, yb), max(ya, yb))] += run.cables
    half = 0.3  # cables drop into the tray at the rack's centre
    along_seg = _split(along)
    across_seg = _split(across)
    peak = max([*along_seg.values(), *across_seg.values(), 1])
    out: list[str] = []
    cap = ' stroke-linecap="round" opacity="0.75"'
    for (yt, xa, xb), n in sorted(along_seg.items()):
        w = 1.5 + 7 * math.sqrt(n / peak)
        out.append(doc.line(f.x(xa + half), f.y(yt), f.x(min(xb + half, edge)), f.y(yt),
                            TRAY, w, cap + f' data-cables="{n:g}"'))
    for (xt, ya, yb), n in sorted(across_seg.items()):
        w = 1.5 + 7 * math.sqrt(n / peak)
        out.append(doc.line(f.x(xt + half), f.y(ya), f.x(xt + half), f.y(yb), TRAY, w,
                            cap + f' data-cables="{n:g}"'))
    for yt, n in sorted(per_row.items()):  # cables entering each row's tray from its racks
        out.append(doc.text(f.x(row_end[yt] + 0.6) + 6, f.y(yt) - 5,
                            f"{thousands(n)} cables", 9.5, weight="bold", fill="#2d3e4f"))
    for (yt, hall), n in sorted(away.items()):
        out.append(doc.text(f.x(edge) + 4, f.y(yt) + 12, f"→ hall {hall}: {thousands(n)}",
                            9.5, weight="bold", fill="#2d3e4f"))
    return out


def _split(segments: Counter[tuple[float, float, float]]) -> dict[tuple[float, float, float],
                                                                    float]:
    """Overlapping segments on the same line -> disjoint pieces with summed loads."""
    lines: dict[float, list[tuple[float, float, int]]] = {}
    for (k, a, b), n in segments.items():
        lines.setdefault(k, []).append((a, b, n))
    out: dict[tuple[float, float, float], float] = {}
    for k, segs in lines.items():
        cuts = sorted({p for a, b, _ in segs for p in (a, b)})
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            load = sum(n for a, b, n in segs if a <= lo and b >= hi)
            if load:
                out[(k, lo, hi)] = load
    return out


def _run_table(doc: Svg, x: float, y: float, hall: str, runs: dict[tuple[str, str], _Run],
               width: float) -> float:
    """Cable runs between rows: count, run lengths, longest cable; returns the bottom y."""
    rows: dict[tuple[str, str], list[_Run]] = {}
    for run in runs.values():
        dst = f"row {run.dst.row}" if run.dst.hall == hall else f"hall {run.dst.hall}"
        rows.setdefault((f"row {run.src.row}", dst), []).append(run)
    doc.add(doc.text(x, y, "cable runs leaving each row (inter-rack cables of every fabric)",
                     12, weight="bold"))
    y += 8
    cols = [("from", 0), ("to", 70), ("cables", 150), ("run m", 220), ("longest cable m", 330)]
    out = [doc.text(x + dx, y + 14, c, 10.5, weight="bold") for c, dx in cols]
    out.append(doc.line(x, y + 19, x + min(width, 460), y + 19, "#999", 0.8))
    y += 20
    for (src, dst), rs in sorted(rows.items()):
        y += 15
        lo = min(r.run_min for r in rs)
        hi = max(r.run_max for r in rs)
        vals = [src, dst, thousands(sum(r.cables for r in rs)), f"{lo:.1f}–{hi:.1f}",
                f"{max(r.cable_max for r in rs):g}"]
        out += [doc.text(x + dx, y, v, 10.5) for (_, dx), v in zip(cols, vals, strict=True)]
    if not rows:
        y += 15
        out.append(doc.text(x, y, "none: every cable stays inside its rack", 10.5))
    doc.add(group({"class": "runs"}, out))
    return y + 6
