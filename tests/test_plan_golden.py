"""Plans of every example site are committed golden files; regenerate and diff them.

Large sites keep a SHA256SUMS manifest plus their small files instead of 20 MB of JSON.
Update after an intended change: GPUCTL_UPDATE_GOLDEN=1 pytest tests/test_plan_golden.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from provision.plan.load import load_and_plan
from provision.render.plan_files import render_plan_files
from tests.conftest import EXAMPLE_SITES, ROOT, SITES
from tests.conftest import UPDATE_GOLDEN as UPDATE

GOLDEN = ROOT / "tests" / "golden" / "plans"
BIG = 2_000_000


def _expected(files: dict[str, str]) -> dict[str, str]:
    """What is stored: small files verbatim, and a manifest of every file's hash."""
    out = {k: v for k, v in files.items() if len(v) < BIG}
    out["SHA256SUMS"] = "".join(f"{hashlib.sha256(v.encode()).hexdigest()}  {k}\n"
                                for k, v in sorted(files.items()))
    if any(len(v) >= BIG for v in files.values()):
        out = {k: v for k, v in out.items() if k.endswith((".csv", "SHA256SUMS", ".svg"))
               and len(v) < 200_000}
    return out


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_plan_matches_golden(site: str) -> None:
    _, plan = load_and_plan(SITES / site)
    files = render_plan_files(plan)
    assert render_plan_files(plan) == files, "rendering is not deterministic"
    expected = _expected(files)
    gdir = GOLDEN / site
    if UPDATE:
        gdir.mkdir(parents=True, exist_ok=True)
        for old in sorted(gdir.rglob("*"), reverse=True):
            old.rmdir() if old.is_dir() else old.unlink()
        for name, text in expected.items():
            (gdir / name).parent.mkdir(parents=True, exist_ok=True)
            (gdir / name).write_text(text)
    stored = {p.relative_to(gdir).as_posix(): p.read_text() for p in gdir.rglob("*")
              if p.is_file()}
    assert sorted(stored) == sorted(expected)
    for name in sorted(expected):
        assert stored[name] == expected[name], f"{site}/{name} differs from the golden file"


def test_golden_manifest_covers_every_plan_file() -> None:
    for site in EXAMPLE_SITES:
        lines = (GOLDEN / site / "SHA256SUMS").read_text().splitlines()
        names = {ln.split()[1] for ln in lines}
        assert names >= {"plan.json", "cabling.csv", "addresses.csv", "bom.csv", "power.csv",
                         "fabric.svg", "plan.html"}
        assert any(n.startswith("floor/") for n in names)
        assert any(n.startswith("racks/") for n in names)


def test_plan_check_detects_drift(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from provision.cli.main import cli

    r = CliRunner()
    out = tmp_path / "gen"
    assert r.invoke(cli, ["plan", str(SITES / "lab"), "-o", str(out)]).exit_code == 0
    assert r.invoke(cli, ["plan", str(SITES / "lab"), "-o", str(out), "--check"]).exit_code == 0
    (out / "bom.csv").write_text("edited by hand\n")
    res = r.invoke(cli, ["plan", str(SITES / "lab"), "-o", str(out), "--check"])
    assert res.exit_code == 1 and "bom.csv" in res.output
    (out / "bom.csv").unlink()
    assert r.invoke(cli, ["plan", str(SITES / "lab"), "-o", str(out), "--check"]).exit_code == 1
