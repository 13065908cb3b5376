"""``gpuctl lint``: schema and semantic checks of a site."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from provision.cli.common import SITE_ARG
from provision.errors import SiteLoadError
from provision.loader import load_site_raw, schema_errors, validate_site
from provision.plan.lint import lint as run_lint


@click.command("lint")
@SITE_ARG
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: file:line:col: CODE message; json: a list.")
def lint(site: Path, fmt: str) -> None:
    """Check SITE against the schema and the semantic rules.

    \b
    Every finding is one line, `file:line:col: CODE message (fix: hint)`, with a stable
    code (GPU1xx) that scripts can match. Exit 0 clean, 1 findings, 2 unreadable input.
    \b
    Example:
      gpuctl lint inventory/sites/lab
    """
    rows: list[dict[str, object]] = []
    try:
        path, raw, positions = load_site_raw(site)
    except SiteLoadError as exc:
        _emit(fmt, [{"file": exc.file, "line": exc.line, "col": exc.col, "code": exc.code,
                     "message": exc.reason, "hint": "fix the file so it parses"}])
        sys.exit(2)
    try:
        loaded = validate_site(path, raw, positions)
    except SiteLoadError as exc:
        cause = exc.__cause__
        errs = schema_errors(cause, positions, str(path)) if isinstance(cause, ValidationError) \
            else [exc]
        _emit(fmt, [{"file": e.file, "line": e.line, "col": e.col, "code": e.code,
                     "message": e.reason, "hint": "see `gpuctl schema` for the allowed keys"}
                    for e in errs])
        sys.exit(1 if isinstance(cause, ValidationError) else 2)
    _, findings = run_lint(loaded)
    rows = [{"file": f.file, "line": f.line, "col": f.col, "code": f.code,
             "message": f.message, "hint": f.hint} for f in findings]
    _emit(fmt, rows)
    sys.exit(1 if rows else 0)


def _emit(fmt: str, rows: list[dict[str, object]]) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        where = f"{r['file']}:{r['line'] or 1}:{r['col'] or 1}"
        click.echo(f"{where}: {r['code']} {r['message']} (fix: {r['hint']})")
    if not rows:
        click.echo("ok: no findings", err=True)
