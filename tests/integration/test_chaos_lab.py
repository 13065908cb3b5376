"""Chaos: ``gpuctl provision site`` and ``gpuctl burnin run`` killed at random moments on
the lab, then resumed.

SIGKILL 10 times and SIGTERM 3 times, at a random moment of a short phase subset (the Python
phases, and base for some SIGKILLs so a live ``ansible-playbook`` is killed with its gpuctl;
one of those the moment the first host's base success is stored, while the playbook still
runs), each followed by ``--resume``. After every kill: nothing gpuctl started is alive 2 s later
and (SIGTERM) the run ended within 5 s with exit 130. After every resume: all hosts ok, no
host-phase that had finished before the kill was done again, no temp file left, and the
history has no run left ``running``. A run's temp files all live in its run directory
(``SITE/.gpuctl/runs/<pid>``), so "none left" is that folder being empty: ``/tmp`` is shared
with other users and cannot be attributed.

Burn-in, on a lab of its own (a copy of the ``lab`` site, simulated GPUs and HCAs): a
standard run killed 4 times with SIGKILL and once with SIGTERM, each kill followed by
``--resume`` (which is the next trial's run; the last one completes). After every kill
nothing of the run is alive 2 s later -- its local children and every command it started on
the hosts (perftest servers, mpirun, probes: the remote guard's ``gpuctl-guard`` trees) --
and no hostfile is left in ``/tmp`` (the lab hosts share it). At the end the run directory is
gone, the history reads every killed run ``interrupted`` (SIGKILL: "stale: pid N gone") and
the last one ``ok``, and no probe finished before a kill was run again.
Prints the tally: ``chaos: 13/13 provision, 5/5 burn-in``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from burnin_labsite import burnin_lab, own_site  # noqa: E402
from test_provision_lab import HOSTS, ROOT, SITE, Lab, _unavailable, lab_site  # noqa: E402,F401

from provision.execute.childguard import descendants  # noqa: E402
from provision.execute.phases import PHASES  # noqa: E402
from provision.execute.store import open_store  # noqa: E402

pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]

RUNS_DIR = SITE / ".gpuctl" / "runs"
TALLY: dict[str, str] = {}


def _argv(lab: Lab, db: Path, phases: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "provision.cli.main", "provision", "site", str(SITE),
            "--lab-dir", str(lab.root), "--store", str(db), "--phases", phases,
            "--format", "json", *extra]


def _live(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def _mentioning(text: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if text.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    out.append(int(entry))
            except OSError:
                pass
    return _live(out)


def _phase_running(db: Path, phase: str) -> bool:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("SELECT status FROM phase_results WHERE phase=? ORDER BY "
                               "rowid DESC LIMIT 1", (phase,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == "running"


def _host_finished(db: Path, phase: str) -> list[str]:
    """Hosts whose ``phase`` succeeded in the latest run (stored as each host finishes)."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            rows = conn.execute("SELECT host FROM host_results WHERE phase=? AND status IN "
                                "('ok', 'changed') AND run_id=(SELECT max(id) FROM runs)",
                                (phase,)).fetchall()
    except sqlite3.Error:
        return []
    return [r[0] for r in rows]


def _last_run_id(db: Path) -> int:
    with sqlite3.connect(db, timeout=5) as conn:
        row = conn.execute("SELECT max(id) FROM runs").fetchone()
    return int(row[0])


def _trial(lab: Lab, db: Path, rng: random.Random, phases: str, sig: signal.Signals,
           wait_phase: str | None) -> None:
    """``wait_phase`` "base": kill at a random moment of base; "base:done": at once when the
    first host's base success is stored while the playbook still runs."""
    at_done = wait_phase is not None and wait_phase.endswith(":done")
    wait_phase = wait_phase.split(":")[0] if wait_phase else None
    proc = subprocess.Popen(_argv(lab, db, phases), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        if wait_phase is not None:
            while not _phase_running(db, wait_phase) and proc.poll() is None:
                assert time.monotonic() < deadline, f"{wait_phase} never started"
                time.sleep(0.2)
        if at_done and wait_phase is not None:
            while not _host_finished(db, wait_phase) and proc.poll() is None:
                assert time.monotonic() < deadline, f"no host finished {wait_phase}"
                time.sleep(0.05)
            assert proc.poll() is None, "the run ended before a kill after a host finished"
        else:
            time.sleep(rng.uniform(0.3, 6.0))
        tree = descendants(proc.pid)
        sent = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(sig)
        rc = proc.wait(30)
        if sig == signal.SIGTERM and rc != 0:
            assert rc == 130, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() - sent < 5.0, "SIGTERM took longer than 5 s"
        time.sleep(max(0.0, 2.0 - (time.monotonic() - sent)))
        assert not _live(tree), f"alive 2 s after {sig.name}: {_live(tree)}"
        assert not _mentioning(f".gpuctl/runs/{proc.pid}/"), "a child of the killed run lives"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _resume(lab: Lab, db: Path, phases: str) -> None:
    with open_store(db) as st:
        st.reap()
        last = st.runs(kind="provision", limit=1)
        finished = {(p, h) for p, h in st.succeeded(
            "provision", last[0].site, last[0].plan_version, phases=PHASES)
            if p != "preflight"} if last else set()
    done = subprocess.run(_argv(lab, db, phases, "--resume"), cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    got = {(r["phase"], r["host"]): r["status"] for r in data["results"]}
    assert {h for (p, h), s in got.items() if s in ("failed", "unreachable")} == set()
    redone = {k for k in got if k in finished}
    assert not redone, f"--resume redid finished host-phases: {sorted(redone)}"


def test_chaos_kills_and_resumes(lab_site: Lab) -> None:  # noqa: F811
    rng = random.Random(int(os.environ.get("GPUCTL_CHAOS_SEED", "17")))
    db = lab_site.tmp / "chaos.db"
    trials = ([(signal.SIGKILL, "preflight,image", None)] * 8
              + [(signal.SIGKILL, "base", "base"), (signal.SIGKILL, "base", "base:done")]
              + [(signal.SIGTERM, "preflight,image", None)] * 3)
    rng.shuffle(trials)
    ok = 0
    resumes: list[int] = []
    for sig, phases, wait_phase in trials:
        _trial(lab_site, db, rng, phases, sig, wait_phase)
        _resume(lab_site, db, phases)
        resumes.append(_last_run_id(db))
        left = list(RUNS_DIR.iterdir()) if RUNS_DIR.is_dir() else []
        assert not left, f"run directories left behind: {left}"
        ok += 1
    with open_store(db) as st:
        runs = st.runs(kind="provision", limit=1000)  # latest first
    # A kill that lands before the run is recorded (a slow start under load) leaves no run;
    # every other killed run is in history, and every resume is.
    killed = [r for r in runs if r.id not in resumes]
    assert len(killed) >= len(trials) - 3, f"only {len(killed)} killed runs were recorded"
    assert len(runs) == len(killed) + len(trials)
    assert all(r.status == "ok" for r in runs if r.id in resumes), "a resume did not finish"
    assert {r.status for r in killed} <= {"interrupted", "ok"}, "history inconsistent"
    assert all(r.finished_at is not None and r.finished_at >= r.started_at for r in runs)
    kills = sum(s == signal.SIGKILL for s, _, _ in trials)
    TALLY["provision"] = f"{ok}/{len(trials)} provision"
    print(f"\nchaos: {ok}/{len(trials)} provision ({kills} SIGKILL, "
          f"{len(trials) - kills} SIGTERM), each resumed")


def test_sigterm_with_a_host_down_in_image_ends_within_5_s(lab_site: Lab) -> None:  # noqa: F811
    """One host's link is down (SSH attempts hang, then fail): the image phase's SSH wait
    sees the SIGTERM at once instead of waiting out --boot-timeout."""
    from provision.lab.state import load_state

    state = load_state(lab_site.root)
    assert state is not None
    down = state.hosts["lab-gpu-02"]
    db = lab_site.tmp / "down.db"
    subprocess.run(["ip", "link", "set", down.veth, "down"], check=True)
    proc = subprocess.Popen(_argv(lab_site, db, "image", "--boot-timeout", "600"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _phase_running(db, "image"):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "image never started"
            time.sleep(0.2)
        time.sleep(4)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        took = time.monotonic() - sent
    finally:
        subprocess.run(["ip", "link", "set", down.veth, "up"], check=False)
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert rc == 130 and took < 5.0, f"exit {rc} after {took:.1f}s"
    with open_store(db) as st:
        [run] = st.runs(kind="provision")
        assert run.status == "interrupted"
        mine = {r.host: r.status for r in st.results_for(run.id, "image")}
    assert mine.get("lab-gpu-02") == "running", mine  # power-cycled, never back: not done


def _guarded_trees() -> list[int]:
    """Every process of a remote guard (``sh -c ... gpuctl-guard CMD``) and all below it: the
    commands burn-in started on the lab hosts (one PID namespace with this machine)."""
    roots = _mentioning("gpuctl-guard")
    return _live(sorted({p for r in roots for p in [r, *descendants(r)]}))


def _hostfiles(since: float) -> list[str]:
    out = []
    for entry in Path("/tmp").glob("gpuctl-burnin-*"):
        try:
            if entry.stat().st_mtime >= since:
                out.append(str(entry))
        except OSError:
            pass
    return out


def _first_new_output(db: Path, proc: subprocess.Popen[str], since: float) -> None:
    """Wait until the latest burn-in run stored a probe output of its own (copied ones
    keep their time), so a resumed run is killed while it still has work to do."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM burnin_outputs WHERE recorded_at >= ? AND run_id="
                    "(SELECT max(id) FROM runs WHERE kind='burnin')", (since,)).fetchone()
        except sqlite3.Error:
            row = None
        if row is not None and row[0] > 0:
            return
        time.sleep(0.1)


def test_chaos_burnin_kills_and_resumes(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("GPUCTL_CHAOS_SEED", "17")) + 1)
    site = own_site(tmp_path, "cb")
    db = tmp_path / "burnin.db"
    trials = [signal.SIGKILL] * 4 + [signal.SIGTERM]
    rng.shuffle(trials)
    began = time.time()
    ok = 0
    with burnin_lab(site, tmp_path / "lab") as lab_dir:
        def argv(*extra: str) -> list[str]:
            return [sys.executable, "-m", "provision.cli.main", "burnin", "run", str(site),
                    "--rack", "a01", "--level", "standard", "--lab-dir", str(lab_dir),
                    "--store", str(db), "--format", "json", "--timeout", "120", *extra]

        for number, sig in enumerate(trials):
            extra = ("--resume",) if number else ()
            proc = subprocess.Popen(argv(*extra), cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                if rng.random() < 0.2:  # early: the fabric check (a local guarded child)
                    time.sleep(rng.uniform(0.5, 2.0))
                else:  # once this run made a probe of its own durable, a moment later
                    _first_new_output(db, proc, time.time())
                    time.sleep(rng.uniform(0.0, 4.0))
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                tree = descendants(proc.pid) + _guarded_trees()
                sent = time.monotonic()
                proc.send_signal(sig)
                rc = proc.wait(30)
                if sig == signal.SIGTERM:
                    assert rc == 130, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() - sent < 5.0, "SIGTERM took longer than 5 s"
                time.sleep(max(0.0, 2.0 - (time.monotonic() - sent)))
                assert not _live(tree), f"alive 2 s after {sig.name}: {_live(tree)}"
                assert not _guarded_trees(), "a command of the killed run lives on a host"
                assert not _hostfiles(began), _hostfiles(began)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
            ok += 1
        done = subprocess.run(argv("--resume"), cwd=ROOT, capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout)["ok"] is True
    runs_dir = site / ".gpuctl" / "runs"
    assert not (list(runs_dir.iterdir()) if runs_dir.is_dir() else []), "run dirs left"
    assert not _hostfiles(began)
    from provision.burnin.store import open_burnin_store

    with open_burnin_store(db) as st:
        st.runs.reap()
        runs = st.burnin_runs(site.name, limit=100)  # latest first
    with sqlite3.connect(db) as conn:
        outputs = {r.id: dict(conn.execute("SELECT unit, recorded_at FROM burnin_outputs "
                                           "WHERE run_id=?", (r.id,)).fetchall())
                   for r in runs}
    assert runs[0].status == "ok", runs[0]
    assert all(r.status == "interrupted" for r in runs[1:]), [(r.id, r.status) for r in runs]
    assert all(r.finished_at is not None and r.finished_at >= r.started_at for r in runs)
    assert 2 <= len(runs) <= len(trials) + 1, "one run per start (a kill during the " \
        "fabric check leaves none)"
    final = outputs[runs[0].id]
    for r in runs[1:]:  # a probe finished before a kill was kept, not run again
        for unit, at in outputs[r.id].items():
            assert final.get(unit) == at, f"run {r.id}: {unit} was run again"
    TALLY["burn-in"] = f"{ok}/{len(trials)} burn-in"
    print(f"\nchaos: {', '.join(TALLY[k] for k in ('provision', 'burn-in') if k in TALLY)}")
