"""The results store: runs, resume logic, the per-site lock, interrupted runs."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provision.errors import ExecutionError, UsageError
from provision.execute.phases import PHASES
from provision.execute.store import open_store, site_lock
from provision.storefile import StoreError, default_path, history_path, sqlite_path


def test_wal_mode_and_url_forms(tmp_path: Path) -> None:
    db = tmp_path / "a" / "runs.db"
    with open_store(f"sqlite:///{db}") as st:
        st.record_run(kind="provision", site="s", plan_version="v1")
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert sqlite_path("sqlite:////abs/x.db") == Path("/abs/x.db")
    assert sqlite_path("rel/x.db") == Path("rel/x.db")
    with pytest.raises(UsageError, match="postgresql"):
        sqlite_path("postgresql://u@h/db")


def test_resume_sees_only_successes_of_the_same_plan_version(tmp_path: Path) -> None:
    with open_store(tmp_path / "r.db") as st:
        run = st.record_run(kind="provision", site="s", plan_version="v1")
        st.record_result(run, "base", "h1", "changed", stats={"changed": 3})
        st.record_result(run, "base", "h2", "failed", detail="boom")
        st.record_result(run, "image", "h2", "ok")
        st.finish_run(run, "failed")
        other = st.record_run(kind="provision", site="s", plan_version="v2")
        st.record_result(other, "base", "h2", "ok")
        dry = st.record_run(kind="provision-dry-run", site="s", plan_version="v1")
        st.record_result(dry, "base", "h2", "ok")
        assert st.succeeded("provision", "s", "v1", phases=PHASES) == {("base", "h1"), ("image", "h2")}
        assert st.succeeded("provision", "s", "v2", phases=PHASES) == {("base", "h2")}
        assert st.succeeded("provision", "other", "v1", phases=PHASES) == set()
        [r] = st.results_for(run, "base")[:1]
        assert r.host == "h1" and r.stats == {"changed": 3}
        assert [x.status for x in st.runs(site="s", kind="provision")] == ["running", "failed"]


def test_a_run_of_a_dead_process_is_marked_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    code = ("import sys, os; from provision.execute.store import open_store\n"
            f"st = open_store({str(db)!r})\n"
            "r = st.record_run(kind='provision', site='s', plan_version='v')\n"
            "st.record_phase(r, 'base', 'running')\n"
            "st.record_result(r, 'base', 'h1', 'ok')\n"
            "os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    with open_store(db) as st:
        [run] = st.runs(site="s")
        assert run.status == "running"
        assert st.reap() == [run.id]
        [run] = st.runs(site="s")
        assert run.status == "interrupted" and run.finished_at is not None
        assert run.detail.startswith("stale: pid ") and run.detail.endswith(" gone (killed "
                                                                             "or crashed)")
        [result_at] = sqlite3.connect(db).execute("SELECT recorded_at FROM host_results")
        assert run.finished_at == result_at[0], "lived until its last record, not until reaped"
        assert st.phases(run.id) == [("base", "interrupted", "")]
        # what finished before the kill still counts for --resume
        assert st.succeeded("provision", "s", "v", phases=PHASES) == {("base", "h1")}


def test_a_live_run_is_not_reaped(tmp_path: Path) -> None:
    with open_store(tmp_path / "r.db") as st:
        run = st.record_run(kind="provision", site="s", plan_version="v")
        assert st.reap() == []
        st.finish_run(run, "interrupted", "SIGTERM")
        assert st.runs()[0].status == "interrupted"
        with pytest.raises(ValueError):
            st.finish_run(run, "running")


def _hold(lock: str, ready: multiprocessing.synchronize.Event,
          release: multiprocessing.synchronize.Event) -> None:
    with site_lock(Path(lock), "site s"):
        ready.set()
        release.wait(30)


def test_site_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    lock = tmp_path / ".gpuctl" / "provision.lock"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(lock), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with (pytest.raises(ExecutionError,
                            match=rf"site s: another gpuctl run holds .*pid {proc.pid}"),
              site_lock(lock, "site s")):
            pass
    finally:
        release.set()
        proc.join(30)
    with site_lock(lock, "site s"):
        assert lock.read_text().strip() == str(os.getpid())


def test_history_shows_a_killed_run_as_interrupted_with_the_time_it_lived(
        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from provision.cli.main import cli
    from tests.conftest import SITES

    db = tmp_path / "h.db"
    code = ("import os, time; from provision.execute.store import open_store\n"
            f"st = open_store({str(db)!r})\n"
            "r = st.record_run(kind='provision', site='lab', plan_version='v')\n"
            "time.sleep(1.2)\n"
            "st.record_result(r, 'image', 'lab-gpu-01', 'ok')\n"
            "os.kill(os.getpid(), 9)\n")
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    time.sleep(1.5)  # reaped later than it died: history must not count this
    res = CliRunner().invoke(cli, ["provision", "history", str(SITES / "lab"), "--store",
                                   str(db), "--format", "json"], obj={})
    assert res.exit_code == 0, res.output
    [row] = json.loads(res.stdout)
    assert row["status"] == "interrupted"
    assert 1.1 <= float(row["took"].rstrip("s")) < 2.5


def test_one_default_path_and_history_store_for_provision_and_burnin(tmp_path: Path) -> None:
    assert default_path(tmp_path) == tmp_path / ".gpuctl" / "provision.db"
    assert history_path(None, tmp_path) is None  # nothing recorded yet: an empty history
    with pytest.raises(StoreError, match="no such file"):
        history_path(str(tmp_path / "typo.db"), tmp_path)  # an explicit --store must exist
    with open_store(default_path(tmp_path)) as st:
        run = st.record_run(kind="burnin", site="s", plan_version="v", options={})
        st._conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (run,))  # noqa: SLF001
        st._conn.commit()  # noqa: SLF001
    assert history_path(None, tmp_path) == default_path(tmp_path)
    with open_store(default_path(tmp_path)) as st:
        [r] = st.history(site="s", kind="burnin")
        assert r.status == "interrupted"  # history reaps a run whose holder is gone
