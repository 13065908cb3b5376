"""``gpuctl lint``: schema and semantic checks of a site."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from provision.cli.common import SITE_ARG
from provision.errors import SiteLoadError, SiteSchemaError
from provision.loader import load_site_raw, validate_site
from provision.plan.lint import lint as run_lint
from provision.plan.lintbase import Finding, group


def _from_error(e: SiteLoadError, hint: str) -> Finding:
    return Finding(e.code, e.reason, e.hint or hint, (), file=e.file or "", line=e.line or 1,
                   col=e.col or 1, subject=e.subject)


@click.command("lint")
@SITE_ARG
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: file:line:col: CODE message; json: a list.")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
def lint(site: Path, fmt: str, strict: bool) -> None:
    """Check SITE against the schema and the semantic rules.

    \b
    Every finding is one line, `file:line:col: CODE message (fix: hint)`, with a stable
    code that scripts can match: GPU00x reading and schema, GPU1xx design rules (the table
    is at the top of provision/plan/lint.py). Findings of one code at one line (a rack
    spec shared by a row of 65 racks) are one line with a count and the first examples;
    `--format json` gives `count` and `examples` too.
    \b
    Exit 0 clean (warnings are printed but pass unless --strict), 1 findings,
    2 unreadable input (no such file, not YAML, not UTF-8).
    \b
    Examples:
      gpuctl lint inventory/sites/lab
      gpuctl lint inventory/sites/lab --format json | jq '.[].code'
    """
    try:
        path, raw, positions = load_site_raw(site)
        loaded = validate_site(path, raw, positions)
    except SiteSchemaError as exc:
        _emit(fmt, group(_from_error(e, "see `gpuctl schema` for the allowed keys")
                         for e in exc.errors))
        sys.exit(1)
    except SiteLoadError as exc:
        _emit(fmt, [_from_error(exc, "fix the file so it parses")])
        sys.exit(2)
    _, findings = run_lint(loaded)
    _emit(fmt, findings)
    errors = [f for f in findings if f.severity == "error" or strict]
    sys.exit(1 if errors else 0)


def _emit(fmt: str, findings: list[Finding]) -> None:
    if fmt == "json":
        click.echo(json.dumps([{"file": f.file, "line": f.line, "col": f.col, "code": f.code,
                                "severity": f.severity, "message": f.message, "hint": f.hint,
                                "count": f.count, "examples": list(f.examples)}
                               for f in findings], indent=2))
        return
    for f in findings:
        click.echo(f.text())
    if not findings:
        click.echo("ok: no findings", err=True)
