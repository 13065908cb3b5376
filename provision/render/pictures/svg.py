"""SVG building blocks shared by the pictures: a document, text that fits, legends, palettes.

Pictures are plain SVG 1.1 with inline presentation attributes only (no CSS, no fonts, no
scripts, nothing fetched), so they look the same in a browser, in ``rsvg-convert`` and
embedded in ``plan.html``. Coordinates are rounded to 0.1 px so output is byte-stable.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
CHAR_EM = 0.62
"""Average advance of a character in em for the fonts above (DejaVu Sans is the widest);
labels are sized with it so they fit their boxes."""
MIN_FONT = 8.0
"""No text smaller than this (px at 100 % zoom): below it a label is dropped, not shrunk."""


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Estimated rendered width of ``text`` at font ``size`` px (bold runs ~10 % wider)."""
    return len(text) * size * CHAR_EM * (1.1 if bold else 1.0)


def fit(text: str, width: float, size: float) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` at ``size``; '' if nothing fits."""
    if text_width(text, size) <= width:
        return text
    keep = int(width / (size * CHAR_EM)) - 1
    return text[:keep] + "…" if keep >= 3 else ""


@functools.lru_cache(maxsize=1 << 16)
def num(x: float) -> str:
    """A coordinate, rounded to 0.1 px, without a trailing .0.

    Cached: a site's pictures draw the same few thousand coordinates again and again (at
    131,072 GPUs half a million calls, 5,000 values)."""
    s = f"{x:.1f}"
    if s.endswith(".0"):
        return "0" if s == "-0.0" else s[:-2]
    return s


_XML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def esc(text: str) -> str:
    """Text or attribute value made safe for XML (the fast path: nothing to replace, found
    by four substring tests, not a generator over the characters)."""
    if "&" in text or "<" in text or ">" in text or '"' in text:
        return text.translate(_XML)
    return text


@dataclass(frozen=True, slots=True)
class Style:
    """Fill and stroke of one category, and the words a legend shows for it."""

    fill: str
    stroke: str
    label: str


@dataclass
class Svg:
    """An SVG document built element by element (strings, in drawing order)."""

    width: float
    height: float
    title: str
    parts: list[str] = field(default_factory=list)
    defs: list[str] = field(default_factory=list)

    def define(self, element: str) -> None:
        """Something drawn many times with ``<use xlink:href="#id">`` (once in ``<defs>``)."""
        self.defs.append(element)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str = "none",
             extra: str = "") -> str:
        return (f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" '
                f'fill="{fill}" stroke="{stroke}"{extra}/>')

    def text(self, x: float, y: float, text: str, size: float = 11, anchor: str = "start",
             weight: str = "", fill: str = "#222", extra: str = "") -> str:
        """A text element (``y`` is the baseline); '' when ``text`` is empty."""
        if not text:
            return ""
        attrs = f' font-size="{num(size)}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if weight:
            attrs += f' font-weight="{weight}"'
        if fill != "#222":
            attrs += f' fill="{fill}"'
        return f'<text x="{num(x)}" y="{num(y)}"{attrs}{extra}>{esc(text)}</text>'

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float,
             extra: str = "", tip: str = "") -> str:
        """A line; ``tip`` becomes its hover text."""
        head = (f'<line x1="{num(x1)}" y1="{num(y1)}" x2="{num(x2)}" y2="{num(y2)}" '
                f'stroke="{stroke}" stroke-width="{num(width)}"{extra}')
        return f"{head}>{tooltip(tip)}</line>" if tip else head + "/>"

    def render(self) -> str:
        w, h = num(self.width), num(self.height)
        defs = f"<defs>{''.join(self.defs)}</defs>\n" if self.defs else ""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" '
                f'xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{h}" '
                f'viewBox="0 0 {w} {h}" font-family="{FONT}" font-size="11">\n'
                f"<title>{esc(self.title)}</title>\n{defs}"
                f'<rect x="0" y="0" width="{w}" height="{h}" fill="#fff"/>\n'
                + "\n".join(p for p in self.parts if p) + "\n</svg>\n")


def tooltip(text: str) -> str:
    """A ``<title>`` child: the full facts of an element, shown on hover in a browser."""
    return f"<title>{esc(text)}</title>"


def group(attrs: dict[str, str], children: Iterable[str]) -> str:
    """``<g>`` with attributes (ids and ``data-*`` the tests read) around ``children``."""
    a = "".join(f' {k}="{esc(v)}"' for k, v in attrs.items())
    return f"<g{a}>" + "".join(c for c in children if c) + "</g>"


def legend(doc: Svg, x: float, y: float, title: str, items: Sequence[Style],
           max_width: float) -> float:
    """A legend of swatches left to right, wrapping at ``max_width``; returns its height."""
    size = 11.0
    out = [doc.text(x, y + 12, title, size, weight="bold")]
    cx, cy = x + text_width(title, size, bold=True) + 12, y
    for it in items:
        w = 16 + 6 + text_width(it.label, size) + 16
        if cx + w > x + max_width and cx > x:
            cx, cy = x, cy + 20
        out.append(doc.rect(cx, cy + 2, 16, 12, it.fill, it.stroke))
        out.append(doc.text(cx + 22, cy + 12, it.label, size))
        cx += w
    doc.add(group({"class": "legend"}, out))
    return cy - y + 20


def thousands(n: float) -> str:
    """``12,345``; fractions keep up to two decimals (``44.15``, ``1.5``)."""
    if float(n).is_integer():
        return f"{n:,.0f}"
    return f"{n:,.2f}".rstrip("0").rstrip(".")


HEADROOM: list[tuple[float, Style]] = [
    (0.30, Style("#b7e1a1", "#4a7f35", "≥ 30 % headroom")),
    (0.10, Style("#fee08b", "#9a7b00", "10–30 % headroom")),
    (0.0, Style("#fdae61", "#b35806", "< 10 % headroom")),
    (float("-inf"), Style("#e06666", "#990000", "over budget")),
]
"""Power headroom class (share of the rack budget left at nameplate draw) -> colours."""
NO_LOAD = Style("#ffffff", "#999999", "no load")


def headroom_style(nameplate_kw: float, budget_kw: float) -> Style:
    """Colour of a rack by the share of its power budget left at nameplate draw."""
    if nameplate_kw <= 0:
        return NO_LOAD
    left = (budget_kw - nameplate_kw) / budget_kw if budget_kw > 0 else float("-inf")
    return next(style for floor, style in HEADROOM if left >= floor - 1e-9)


def plural(n: int, word: str) -> str:
    """``1 rack``, ``2 racks``, ``1,024 switches`` (words ending in s, x, ch, sh take es)."""
    if n == 1:
        return f"1 {word}"
    return f"{thousands(n)} {word}{'es' if word.endswith(('s', 'x', 'ch', 'sh')) else 's'}"
