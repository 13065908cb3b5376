"""A self-contained HTML burn-in report: failures first, inline SVG bandwidth plots.

No scripts, stylesheets, fonts or images are fetched: the styles are inline and the plots
are ``<svg>`` elements, so the file can be archived as the acceptance record as-is.
"""

from __future__ import annotations

from html import escape

from provision.burnin.judge import FAIL, PASS, WARN, Verdict
from provision.burnin.report import RunReport, case_name

_COLORS = {FAIL: "#c62828", WARN: "#ef6c00", PASS: "#2e7d32", "skip": "#757575"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left;font-size:13px} th{background:#f3f3f3}
.fail{color:#c62828;font-weight:bold} .pass{color:#2e7d32;font-weight:bold}
.warn{color:#ef6c00;font-weight:bold} .skip{color:#757575} .muted{color:#666;font-size:12px}
"""


def _bar_chart(title: str, values: list[tuple[str, float, bool]], floor: float | None,
               unit: str) -> str:
    """Horizontal bars, one per label; failing bars red; the floor as a dashed line."""
    if not values:
        return ""
    top = max([v for _, v, _ in values] + [floor or 0.0]) * 1.1 or 1.0
    row, left, width = 22, 190, 460
    height = row * len(values) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" '
             f'height="{height}" role="img" aria-label="{escape(title)}">']
    for i, (label, value, ok) in enumerate(values):
        y = 20 + i * row
        w = max(1.0, width * value / top)
        parts.append(f'<text x="{left - 6}" y="{y + 14}" font-size="12" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" '
                     f'fill="{_COLORS[PASS] if ok else _COLORS[FAIL]}"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}" font-size="11">'
                     f'{value:.1f} {escape(unit)}</text>')
    if floor:
        x = left + width * floor / top
        parts.append(f'<line x1="{x:.1f}" y1="12" x2="{x:.1f}" y2="{height - 12}" '
                     'stroke="#333" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="12" font-size="11">floor {floor:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(report: RunReport) -> str:
    """Nodes x rails: the worst ib_write_bw each node measured on each rail."""
    worst: dict[tuple[str, str], tuple[float, float | None]] = {}
    for v in report.pairs:
        if v.test != "ib-write-bw" or v.rail is None or v.value is None:
            continue
        for node in (v.node, v.peer or ""):
            key = (node, v.rail)
            if key not in worst or v.value < worst[key][0]:
                worst[key] = (v.value, v.threshold)
    if not worst:
        return ""
    nodes = sorted({n for n, _ in worst})
    rails = sorted({r for _, r in worst})
    cell, left, topm = 64, 130, 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + cell * len(rails) + 10}"'
             f' height="{topm + 26 * len(nodes) + 10}" role="img" '
             'aria-label="ib_write_bw per node and rail">']
    for c, rail in enumerate(rails):
        parts.append(f'<text x="{left + c * cell + cell / 2}" y="20" font-size="12" '
                     f'text-anchor="middle">{escape(rail)}</text>')
    for r, node in enumerate(nodes):
        y = topm + r * 26
        parts.append(f'<text x="{left - 6}" y="{y + 17}" font-size="12" '
                     f'text-anchor="end">{escape(node)}</text>')
        for c, rail in enumerate(rails):
            got = worst.get((node, rail))
            if got is None:
                continue
            value, floor = got
            ok = floor is None or value >= floor
            blamed = any(v.node == node and v.rail == rail and v.failed
                         for v in report.verdicts)
            color = _COLORS[FAIL] if blamed else (_COLORS[PASS] if ok else _COLORS[WARN])
            parts.append(f'<rect x="{left + c * cell + 2}" y="{y}" width="{cell - 4}" '
                         f'height="22" fill="{color}" opacity="0.85"/>')
            parts.append(f'<text x="{left + c * cell + cell / 2}" y="{y + 15}" '
                         f'font-size="11" fill="#fff" text-anchor="middle">{value:.0f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _verdict_rows(verdicts: list[Verdict]) -> str:
    return "".join(
        f'<tr><td>{escape(v.node)}</td><td class="{v.status}">{v.status.upper()}</td>'
        f"<td>{escape(case_name(v))}</td><td>{escape(v.reason)}</td>"
        f"<td>{escape(v.fix)}</td></tr>" for v in verdicts)


def render_html(report: RunReport) -> str:
    verdict = "PASS" if report.ok else "FAIL"
    s = report.summaries()
    nodes = "".join(
        f'<tr><td>{escape(x.node)}</td><td class="{x.status}">{x.status.upper()}</td>'
        f"<td>{escape(x.state)}</td><td>{escape(', '.join(x.failed_rails))}</td>"
        f"<td>{'<br>'.join(escape(f'{v.test}: {v.reason}') for v in x.failures) or 'ok'}"
        f"</td></tr>" for x in s)
    failures = [v for x in s for v in x.failures]
    single = [(v.node, v.value, not v.failed) for v in report.verdicts
              if v.test == "nccl-single" and v.value is not None]
    floor = next((v.threshold for v in report.verdicts
                  if v.test == "nccl-single" and v.threshold), None)
    colls = "".join(
        f"<tr><td>{escape(c.label)}</td><td>{len(c.members)}</td>"
        f'<td class="{PASS if c.ok else FAIL}">{"PASS" if c.ok else "FAIL"}</td>'
        f"<td>{escape(c.why)}</td></tr>" for c in report.collectives)
    versions = "".join(
        f"<tr><td>{escape(n)}</td><td>{escape(', '.join(f'{k} {v}' for k, v in t.items()))}"
        f"</td></tr>" for n, t in sorted(report.versions.items()))
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>burn-in {escape(report.site)} rack {escape(report.rack)}: {verdict}</title>
<style>{_STYLE}</style></head><body>
<h1>Burn-in {escape(report.site)} rack {escape(report.rack)}:
<span class="{'pass' if report.ok else 'fail'}">{verdict}</span></h1>
<p class="muted">level {escape(report.level)}, profile {escape(report.profile)}, run
{report.run_id}, fabric verify {escape(report.fabric_status)}
{escape(report.fabric_detail)}</p>
<h2>Failures</h2>
{'<p>none</p>' if not failures else '<table><tr><th>node</th><th>verdict</th><th>test</th>'
 '<th>reason</th><th>what to fix</th></tr>' + _verdict_rows(failures) + '</table>'}
<h2>Nodes</h2>
<table><tr><th>node</th><th>verdict</th><th>state</th><th>failed rails</th><th>failures</th>
</tr>{nodes}</table>
<h2>Single-node all_reduce bus bandwidth (GB/s)</h2>
{_bar_chart("nccl-single busbw", single, floor, "GB/s") or '<p>not measured</p>'}
<h2>ib_write_bw per node and rail (worst pair, Gb/s)</h2>
{_heatmap(report) or '<p>not measured</p>'}
<h2>Collectives</h2>
<table><tr><th>run</th><th>nodes</th><th>verdict</th><th>result</th></tr>{colls}</table>
<h2>Tool versions</h2><table>{versions}</table>
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
<h2>All verdicts</h2>
<table><tr><th>node</th><th>verdict</th><th>test</th><th>reason</th><th>what to fix</th></tr>
{_verdict_rows(sorted(report.verdicts, key=lambda v: (v.status != FAIL, v.node, v.test)))}
</table></body></html>
"""
