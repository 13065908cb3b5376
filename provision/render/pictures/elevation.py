"""Rack elevations, one sheet per row: every rack of the row, front view, every device at
its U position with name and model, power against budget above each rack.

A sheet holds at most ``PER_LINE`` racks side by side and wraps the rest onto further lines,
so a 24-rack row is two lines of 12 and the text stays at print size however large the site.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from provision.plan.build import Plan
from provision.plan.feeds import RackFeeds
from provision.plan.layout import Rack
from provision.plan.power import RackPower
from provision.render.pictures.devices import KINDS, Placed
from provision.render.pictures.svg import (
    MIN_FONT,
    Svg,
    fit,
    group,
    headroom_style,
    legend,
    num,
    plural,
    text_width,
    tooltip,
)

PER_LINE = 12
U_PX = 14.0
"""Height of one rack unit: a 1U device takes a 9 px label."""
FRAME_W = 176.0
GUTTER = 20.0
"""Left of each frame: U numbers."""
COL_W = GUTTER + FRAME_W + 18
HEADER = 58.0
MARGIN = 16.0


def row_sheets(plan: Plan, contents: Mapping[str, list[Placed]]) -> dict[str, str]:
    """``racks/<hall>-<row>.svg`` for every row of the site."""
    rows: dict[tuple[str, str], list[Rack]] = {}
    for r in plan.racks:
        rows.setdefault((r.hall, r.row), []).append(r)
    power = {p.rack: p for p in plan.power.racks}
    return {f"racks/{hall}-{row}.svg": row_sheet(plan, hall, row, racks, power, contents,
                                                 {f.rack: f for f in plan.power.feeds})
            for (hall, row), racks in rows.items()}


def row_sheet(plan: Plan, hall: str, row: str, racks: list[Rack],
              power: dict[str, RackPower], contents: Mapping[str, list[Placed]],
              feeds: Mapping[str, RackFeeds] | None = None) -> str:
    lines = math.ceil(len(racks) / PER_LINE)
    per_line = math.ceil(len(racks) / lines)
    size_u = max(r.size_u for r in racks)
    line_h = HEADER + size_u * U_PX + 30
    kinds = [k for k in KINDS if any(d.kind == k for r in racks for d in contents.get(r.name, []))]
    title = f"{plan.site.site.name}: hall {hall}, row {row} — rack elevations (front)"
    budget = {p.budget_kw for p in (power[r.name] for r in racks)}
    cooling = sorted({r.cooling for r in racks})
    used = sum(1 for r in racks if contents.get(r.name))
    sub = (f"{plural(len(racks), 'rack')} ({used} equipped), {size_u}U, "
           f"{'/'.join(f'{b:g}' for b in sorted(budget))} kW budget per rack, "
           f"{', '.join(cooling)} cooling; kW = nameplate / budget")
    width = MARGIN * 2 + max(per_line * COL_W, text_width(title, 15, bold=True),
                                 text_width(sub, 11))
    doc = Svg(width, 0, title)
    doc.add(doc.text(MARGIN, 24, title, 15, weight="bold"))
    doc.add(doc.text(MARGIN, 42, sub, 11, fill="#444"))
    top = 54.0
    top += legend(doc, MARGIN, top, "devices", [KINDS[k] for k in kinds], width - 2 * MARGIN)
    top += 4
    for size in sorted({r.size_u for r in racks}):
        doc.define(_u_scale(doc, size, f"u{size}-{hall}-{row}"))
    for i, rack in enumerate(racks):
        line, col = divmod(i, per_line)
        x = MARGIN + col * COL_W
        y = top + line * line_h
        doc.add(_rack(doc, rack, power[rack.name], contents.get(rack.name, []), x, y,
                      (feeds or {}).get(rack.name)))
    doc.height = top + lines * line_h + MARGIN
    return doc.render()


def _rack(doc: Svg, rack: Rack, pw: RackPower, devices: list[Placed], x: float,
          y: float, fed: RackFeeds | None = None) -> str:
    fx = x + GUTTER
    frame_top = y + HEADER
    frame_h = rack.size_u * U_PX
    used_u = sum(d.units for d in devices)
    hs = headroom_style(pw.nameplate_kw, pw.budget_kw)
    share = min(pw.nameplate_kw / pw.budget_kw, 1.0) if pw.budget_kw > 0 else 1.0
    out = [
        doc.text(fx, y + 15, rack.name, 14, weight="bold"),
        doc.text(fx + FRAME_W, y + 15, f"{rack.cooling}", 10, anchor="end", fill="#555"),
        doc.rect(fx, y + 22, FRAME_W, 12, "#f3f3f3", "#999"),
        doc.rect(fx, y + 22, FRAME_W * share, 12, hs.fill, hs.stroke),
        doc.text(fx + 4, y + 32, f"{pw.nameplate_kw:g} / {pw.budget_kw:g} kW", 9.5),
        doc.text(fx, y + 49, f"{used_u}/{rack.size_u} U used, {len(devices)} devices",
                 9.5, fill="#444"),
        doc.rect(fx, frame_top, FRAME_W, frame_h, "#fafafa", "#333",
                 ' stroke-width="1.5"'),
    ]
    out.append(f'<use xlink:href="#u{rack.size_u}-{rack.hall}-{rack.row}" x="{num(fx)}" '
               f'y="{num(frame_top)}"/>')
    for d in devices:
        if d.units > 0:
            out.append(_device(doc, d, rack, fx, frame_top))
    if not devices:
        out.append(doc.text(fx + FRAME_W / 2, frame_top + frame_h / 2, "empty", 12,
                            anchor="middle", fill="#999"))
    tip = (f"rack {rack.name}: {pw.nameplate_kw:g} kW nameplate, {pw.expected_kw:g} kW "
           f"expected, {pw.budget_kw:g} kW budget, {used_u}/{rack.size_u} U")
    if fed is not None:
        tip += (f"; PDUs: {len(fed.pdus)} x {fed.model} on feeds A/B, {fed.one_feed_kw:g} kW "
                f"on one feed, C13 {fed.c13[0]}/{fed.c13[1]}, C19 {fed.c19[0]}/{fed.c19[1]}")
    return group({"class": "rack", "data-rack": rack.name}, [tooltip(tip), *out])


def _u_scale(doc: Svg, size_u: int, ident: str) -> str:
    """U numbers left of a frame and the U grid inside it, drawn once per sheet."""
    out = []
    for u in range(1, size_u + 1):
        uy = (size_u - u) * U_PX
        out.append(doc.text(-3, uy + U_PX - 3.5, str(u), MIN_FONT, anchor="end",
                            fill="#777"))
    grid = "".join(f"M0 {num(k * U_PX)}h{num(FRAME_W)}" for k in range(1, size_u))
    out.append(f'<path d="{grid}" stroke="#e4e4e4" stroke-width="0.5" fill="none"/>')
    return group({"id": ident}, out)


def _device(doc: Svg, d: Placed, rack: Rack, fx: float, frame_top: float) -> str:
    style = KINDS[d.kind]
    top_u = d.u + d.units - 1
    y = frame_top + (rack.size_u - top_u) * U_PX
    h = d.units * U_PX
    inner = FRAME_W - 8
    u_label = f"U{d.u}" if d.units == 1 else f"U{d.u}–{top_u}"
    out = [tooltip(f"{d.name}: {d.model}, {d.what}, {u_label}"),
           doc.rect(fx + 1.5, y + 0.5, FRAME_W - 3, h - 1, style.fill, style.stroke)]
    if d.units == 1:
        label = fit(f"{d.name}  {d.model}", inner, 9)
        out.append(doc.text(fx + 5, y + U_PX - 4, label, 9))
    else:
        size = 10.5 if d.units >= 3 else 9.5
        out.append(doc.text(fx + 5, y + size + 2, fit(d.name, inner, size), size,
                            weight="bold"))
        out.append(doc.text(fx + 5, y + size + 13, fit(f"{d.model} · {d.what}", inner, 9), 9,
                            fill="#333"))
    attrs = {"class": "device", "data-device": d.name, "data-kind": d.kind,
             "data-u": str(d.u), "data-units": str(d.units), "data-y": num(y)}
    return group(attrs, out)
