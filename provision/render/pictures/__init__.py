"""Pictures a reviewer reads, all drawn from the Plan: ``fabric.svg`` (every fabric by tier
and plane / SU, bundles with link and cable counts, free ports), ``floor/<hall>.svg`` (racks
to scale by kind and power headroom, cable trays), ``racks/<hall>-<row>.svg`` (elevations,
one sheet per row) and ``plan.html`` (all of it with the summary, power and BOM tables).

Pure and deterministic like every renderer; self-contained (no scripts, fonts or links).
"""

from __future__ import annotations

from provision.plan.build import Plan
from provision.render.pictures.devices import rack_contents
from provision.render.pictures.elevation import row_sheets
from provision.render.pictures.fabric import fabric_svg
from provision.render.pictures.floor import floor_plans
from provision.render.pictures.html import plan_html


def render_pictures(plan: Plan) -> dict[str, str]:
    """Every picture of the plan and ``plan.html``, by relative path."""
    contents = rack_contents(plan)
    files = {"fabric.svg": fabric_svg(plan, contents), **floor_plans(plan, contents),
             **row_sheets(plan, contents)}
    files["plan.html"] = plan_html(plan, files)
    return files
