"""A verification result as text for the crew: one table per rack, sorted by cable ID.

Cables outside the scope that are not there yet are counted per rack, not listed (the JSON
output lists them); everything else is one row per finding.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict

from rich.console import Console
from rich.table import Table

from provision.fabric.findings import Finding, VerifyResult, natural_key

STYLE = {"error": "red", "warning": "yellow", "info": "dim"}
WIDTH = 160
MAX_INFERRED_SHOWN = 12
RICH_MAX_ROWS = 300
"""Above this many findings rich tables get slow (seconds); print one plain line each."""


def to_json(result: VerifyResult) -> str:
    return json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n"


def _row(f: Finding) -> tuple[str, str, str, str, str]:
    planned = "\n".join(p.text(True) for p in f.planned) or "-"
    observed = "\n".join(o.text(False) for o in f.observed) or "-"
    cables = "\n".join(f.cables) or (f.devices[0] if f.devices else "-")
    detail = f.message
    if len(f.cables) == 1 and detail.startswith(f"{f.cables[0]}: "):
        detail = detail[len(f.cables[0]) + 2:]
    return cables, f"[{STYLE.get(f.severity, '')}]{f.kind}[/]", planned, observed, detail


def to_text(result: VerifyResult, width: int = WIDTH) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, no_color=False, force_terminal=False,
                      soft_wrap=False, highlight=False)
    shown = [f for f in result.findings if f.kind != "not-yet-present"]
    later: dict[str, int] = defaultdict(int)
    for f in result.findings:
        if f.kind == "not-yet-present":
            later[f.rack or "-"] += 1
    by_rack: dict[str, list[Finding]] = defaultdict(list)
    for f in shown:
        by_rack[f.rack or "-"].append(f)
    compact = len(shown) > RICH_MAX_ROWS
    if compact:
        console.print(f"{len(shown)} findings: one line each (--format json has every detail)")
    for rack in sorted(by_rack, key=natural_key):
        if compact:
            buf.write(f"rack {rack}\n")
            for f in by_rack[rack]:
                cables, _, _, _, detail = _row(f)
                buf.write(f"  {cables.replace(chr(10), ' + '):40} {f.kind:22} {detail}\n")
            continue
        table = Table(title=f"rack {rack}", title_justify="left", show_lines=False,
                      expand=False)
        for col in ("cable", "finding", "planned", "observed", "detail"):
            table.add_column(col, overflow="fold")
        for f in by_rack[rack]:
            table.add_row(*_row(f))
        console.print(table)
    for name, info in list(result.inferred.items())[:MAX_INFERRED_SHOWN]:
        console.print(f"identified by cabling: {name} = {info['guid']} "
                      f"(node description {info['desc']!r})")
    if len(result.inferred) > MAX_INFERRED_SHOWN:
        console.print(f"identified by cabling: {len(result.inferred) - MAX_INFERRED_SHOWN} "
                      "more switches (all of them in --format json)")
    if later:
        total = sum(later.values())
        racks = ", ".join(f"{r} ({n})" for r, n in sorted(later.items(),
                                                           key=lambda kv: natural_key(kv[0])))
        console.print(f"not yet present, outside the scope: {total} planned cables; "
                      f"by rack: {racks}")
    errors = len(result.errors)
    warnings = sum(1 for f in result.findings if f.severity == "warning")
    verdict = "OK" if result.ok else "FAIL"
    outside = f", {warnings} warning(s) outside the scope" if warnings else ""
    console.print(
        f"{result.site} ({result.scope}): {result.matched} of {result.planned_in_scope} planned "
        f"cables in scope present; {result.observed_links} links observed on "
        f"{result.observed_devices} devices; {errors} error(s){outside}: {verdict}")
    return buf.getvalue()
