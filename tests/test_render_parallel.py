"""``render_all``: the forked two-process render equals the sequential one, byte for byte,
and a failure on either side surfaces as the renderer's own error."""

from __future__ import annotations

import csv
import io

import pytest

from provision.errors import GpuctlError, PlanError
from provision.render import site_files
from provision.render.artifacts import ARTIFACTS
from provision.render.csvtext import csv_text
from provision.render.plan_files import PLAN_FILES
from provision.render.site_files import default_jobs, render_all
from tests.render_support import site_plan


def test_two_jobs_render_exactly_what_one_job_renders() -> None:
    plan = site_plan("superpod-h100-4su")
    one = render_all(plan, jobs=1)
    two = render_all(plan, jobs=2)
    assert list(two) == list(one) == sorted(one)
    assert two == one
    assert {"plan.json", "cabling.csv", "ansible/inventory.yml", "ibsim/fabric.net",
            "netbox/cables.csv"} <= set(one)


def test_worker_and_parent_halves_cover_every_family() -> None:
    assert set(site_files.WORKER_PLAN_FILES) < set(PLAN_FILES)
    assert set(site_files.WORKER_ARTIFACTS) < set(ARTIFACTS)


def test_small_plans_render_in_one_process() -> None:
    assert default_jobs(site_plan("lab")) == 1


@pytest.mark.parametrize(("renderer", "side"), [("netbox_tree", "worker"),
                                               ("dns_tree", "parent")])
def test_a_failure_on_either_side_is_raised_in_the_caller(
        monkeypatch: pytest.MonkeyPatch, renderer: str, side: str) -> None:
    assert (renderer.removesuffix("_tree") in site_files.WORKER_ARTIFACTS) == (side == "worker")

    def broken(*_: object) -> dict[str, str]:
        raise PlanError(f"{renderer}: broken on the {side} side")

    monkeypatch.setattr(f"provision.render.artifacts.{renderer}", broken)
    with pytest.raises(PlanError, match=f"{renderer}: broken on the {side} side"):
        render_all(site_plan("lab"), jobs=2)


def test_a_worker_that_dies_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    def die(*_: object) -> dict[str, str]:
        os._exit(3)

    monkeypatch.setattr("provision.render.artifacts.dhcp_tree", die)
    with pytest.raises(GpuctlError, match=r"render worker died .*exit code 3"):
        render_all(site_plan("lab"), jobs=2)


@pytest.mark.parametrize("rows", [
    [("a", "b"), ("c", "d")],
    [("x,y", "z")],
    [('say "hi"', "")],
    [("two\nlines", "x"), ("cr\r", "y")],
    [("", "")],
    [(1, 2.5), ("n", None)],
    [("short",), ("a", "b", "c,d")],
    [],
])
def test_csv_text_is_what_the_csv_module_writes(rows: list[tuple[object, ...]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["h1", "h2"])
    w.writerows(rows)
    assert csv_text(["h1", "h2"], rows) == buf.getvalue()


def test_csv_text_single_column_quotes_empty_values_like_csv() -> None:
    assert csv_text(["only"], [("",), ("x",)]) == 'only\n""\nx\n'
