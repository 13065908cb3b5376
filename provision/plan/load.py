"""The library entry from a site directory to a plan: load, lint, plan.

Every caller that needs a plan from a site dir (the CLI commands, ``gpuctl lab``, tests and
benchmarks) goes through :func:`load_and_plan`, so lint errors stop them all the same way.
"""

from __future__ import annotations

from pathlib import Path

from provision.errors import GpuctlError, PlanError
from provision.loader import LoadedSite, load_site
from provision.plan.build import Plan
from provision.plan.lint import lint


def load_and_plan(site: Path) -> tuple[LoadedSite, Plan]:
    """Load, lint and plan SITE; lint errors stop here with the first finding as one line."""
    loaded = load_site(site)
    plan, findings = lint(loaded)
    findings = [f for f in findings if f.severity == "error"]
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more; run gpuctl lint)" if len(findings) > 1 else ""
        fix = f"; {first.hint}" if first.fix_in_plan_error else ""
        raise PlanError(f"{first.file}:{first.line}:{first.col}: {first.code} "
                        f"{first.message}{fix}{first.more()}{more}")
    if plan is None:  # pragma: no cover - lint returns a plan whenever it finds nothing
        raise GpuctlError(f"{site}: no plan could be built")
    return loaded, plan
