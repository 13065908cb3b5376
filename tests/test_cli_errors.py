"""Golden CLI tests: store damage and bad arguments are one line on stderr with the way out,
and the documented exit status (2: bad usage or unreadable input).

Each case's expected result is ``tests/golden/cli-errors/<case>.txt``: the first line is
``exit N``, the rest is stderr with the test's temporary directory written as ``{tmp}``.
Regenerate with ``GPUCTL_UPDATE_GOLDEN=1 python -m pytest tests/test_cli_errors.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.execute.store import open_store
from tests.conftest import SITES, UPDATE_GOLDEN

GOLDEN = Path(__file__).parent / "golden" / "cli-errors"
LAB = str(SITES / "lab")


def _store_with_runs(path: Path, runs: int = 40) -> Path:
    with open_store(path) as st:
        for i in range(runs):
            run = st.record_run(kind="provision", site="lab", plan_version="v1",
                                options={"phases": ["base"], "note": "x" * 100})
            st.record_result(run, "base", f"lab-gpu-0{i % 4 + 1}", "ok", detail="y" * 200)
            st.finish_run(run, "ok")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def damaged_page(tmp: Path) -> Path:
    """A store whose runs table and index root pages are overwritten (a bad sector, a torn
    write): every query of runs reads one of them."""
    path = _store_with_runs(tmp / "damaged.db")
    with sqlite3.connect(path) as conn:
        roots = [r[0] for r in conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE tbl_name='runs' AND rootpage > 0")]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as fh:
        for root in roots:
            fh.seek((root - 1) * size)
            fh.write(b"\xa5" * size)
    return path


def truncated(tmp: Path) -> Path:
    path = _store_with_runs(tmp / "truncated.db")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3 + 100])
    return path


def not_a_database(tmp: Path) -> Path:
    path = tmp / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)
    return path


Setup = Callable[[Path], list[str]]

CASES: dict[str, Setup] = {
    "provision-history-damaged-page":
        lambda t: ["provision", "history", LAB, "--store", str(damaged_page(t))],
    "provision-history-truncated":
        lambda t: ["provision", "history", LAB, "--store", str(truncated(t))],
    "provision-history-not-a-database":
        lambda t: ["provision", "history", LAB, "--store", str(not_a_database(t))],
    "provision-history-missing-store":
        lambda t: ["provision", "history", LAB, "--store", str(t / "nope.db")],
    "provision-history-store-in-missing-dir":
        lambda t: ["provision", "history", LAB, "--store", str(t / "no" / "such" / "p.db")],
    "provision-history-other-scheme":
        lambda t: ["provision", "history", LAB, "--store", "postgresql://db/gpuctl"],
    "provision-site-damaged-page":
        lambda t: ["provision", "site", LAB, "--no-lab", "--dry-run", "--phases", "base",
                   "--store", str(damaged_page(t))],
    "burnin-history-damaged-page":
        lambda t: ["burnin", "history", LAB, "--store", str(damaged_page(t))],
    "burnin-history-missing-store":
        lambda t: ["burnin", "history", LAB, "--store", str(t / "nope.db")],
    "provision-history-limit-huge":
        lambda t: ["provision", "history", LAB, "--limit", "99999999999999999999"],
    "provision-history-limit-negative":
        lambda t: ["provision", "history", LAB, "--limit", "-1"],
    "provision-history-limit-not-a-number":
        lambda t: ["provision", "history", LAB, "--limit", "all"],
    "burnin-history-limit-zero":
        lambda t: ["burnin", "history", LAB, "--limit", "0"],
    "provision-site-unknown-phase":
        lambda t: ["provision", "site", LAB, "--phases", "preflight,imgae", "--dry-run"],
    "provision-site-boot-timeout-negative":
        lambda t: ["provision", "site", LAB, "--boot-timeout", "-5"],
    "provision-site-forks-zero":
        lambda t: ["provision", "site", LAB, "--forks", "0"],
    "provision-unknown-command":
        lambda t: ["provision", "histroy", LAB],
    "provision-site-missing-site":
        lambda t: ["provision", "site", str(t / "no-such-site")],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_error_is_one_line_with_its_exit_status(case: str, tmp_path: Path) -> None:
    args = CASES[case](tmp_path)
    res = CliRunner().invoke(cli, args, obj={}, prog_name="gpuctl")
    stderr = res.stderr.replace(str(tmp_path), "{tmp}")
    got = f"exit {res.exit_code}\n{stderr}"
    assert "Traceback" not in res.output
    assert stderr.count("\n") == 1 and stderr.startswith("gpuctl: error: "), stderr
    expected = GOLDEN / f"{case}.txt"
    if UPDATE_GOLDEN:
        expected.write_text(got)
        return
    assert got == expected.read_text()


def test_every_golden_case_has_a_setup() -> None:
    assert {p.stem for p in GOLDEN.glob("*.txt")} == set(CASES)


def test_damaged_store_is_left_as_it_was(tmp_path: Path) -> None:
    """Nothing lost: a refused store is not rewritten, so it can still be recovered."""
    path = damaged_page(tmp_path)
    before = path.read_bytes()
    res = CliRunner().invoke(cli, ["provision", "history", LAB, "--store", str(path)], obj={})
    assert res.exit_code == 2 and path.read_bytes() == before


def test_default_store_absent_is_an_empty_history(tmp_path: Path) -> None:
    """Without --store, a site nobody provisioned yet has no runs (not an error)."""
    import shutil

    site = tmp_path / "lab"
    shutil.copytree(SITES / "lab", site, ignore=shutil.ignore_patterns(".gpuctl", ".lab"))
    res = CliRunner().invoke(cli, ["provision", "history", str(site), "--format", "json"],
                             obj={})
    assert res.exit_code == 0 and res.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [
    ["lint"], ["plan"], ["fabric", "verify"], ["provision", "site"], ["provision", "rack"],
    ["burnin", "run"], ["image", "build"], ["image", "list"]])
def test_commands_that_can_fail_document_their_exit_status(command: list[str]) -> None:
    # A script (or CI) that runs one of these needs to know what its exit status means.
    out = CliRunner().invoke(cli, [*command, "--help"]).stdout.lower()
    assert "exit" in out and (" 1" in out or "1 " in out), " ".join(command)
