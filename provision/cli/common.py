"""Helpers shared by the CLI commands: loading a site and failing on lint errors."""

from __future__ import annotations

from pathlib import Path

import click

from provision.errors import GpuctlError, PlanError
from provision.loader import LoadedSite, load_site
from provision.plan.build import Plan
from provision.plan.lint import lint

SITE_ARG = click.argument("site", metavar="SITE", type=click.Path(path_type=Path))

HISTORY_LIMIT = click.option(
    "--limit", "count", type=click.IntRange(1, 10000), default=20, show_default=True,
    help="Runs shown, latest first (1 to 10000).")
"""``--limit`` of every history command: the same name, range and message everywhere."""


def load_and_plan(site: Path) -> tuple[LoadedSite, Plan]:
    """Load, lint and plan SITE; lint errors stop here with the first finding as one line."""
    loaded = load_site(site)
    plan, findings = lint(loaded)
    findings = [f for f in findings if f.severity == "error"]
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more; run gpuctl lint)" if len(findings) > 1 else ""
        raise PlanError(f"{first.file}:{first.line}:{first.col}: {first.code} "
                        f"{first.message}{first.more()}{more}")
    if plan is None:  # pragma: no cover - lint returns a plan whenever it finds nothing
        raise GpuctlError(f"{site}: no plan could be built")
    return loaded, plan
