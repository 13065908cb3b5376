"""Run records: what happened, per run, phase and host (SQLite by default, WAL mode).

Generic enough for provisioning and burn-in alike::

    store = open_store(url_or_path)              # "sqlite:///path.db" or a bare path
    run = store.record_run(kind="provision", site="lab", plan_version=v, options={...})
    store.record_phase(run, "base", "ok")
    store.record_result(run, "base", "lab-gpu-01", "ok", stats={"ok": 12, "changed": 3})
    store.finish_run(run, "ok")
    done = store.succeeded("provision", "lab", v, phases=PHASES)  # for --resume

A run left ``running`` by a process that is gone (Ctrl-C, kill -9, power loss) is marked
``interrupted`` by :meth:`Store.reap`, which every new run calls first. ``site_lock`` keeps two
provisions of one site from running at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import ExecutionError
from provision.execute.resume import Attempt, done
from provision.storefile import connect, sqlite_path

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    site TEXT NOT NULL,
    plan_version TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    pid INTEGER NOT NULL,
    machine TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS phase_results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    phase TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, phase)
);
CREATE TABLE IF NOT EXISTS host_results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    phase TEXT NOT NULL,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    stats TEXT NOT NULL DEFAULT '{}',
    detail TEXT NOT NULL DEFAULT '',
    recorded_at REAL NOT NULL,
    PRIMARY KEY (run_id, phase, host)
);
CREATE INDEX IF NOT EXISTS runs_by_site ON runs(kind, site, plan_version);
"""

RUN_STATES = ("running", "ok", "failed", "interrupted")


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    site: str
    plan_version: str
    status: str
    started_at: float
    finished_at: float | None
    pid: int
    machine: str
    options: dict[str, Any]
    detail: str


@dataclass(frozen=True)
class HostResult:
    run_id: int
    phase: str
    host: str
    status: str
    stats: dict[str, int]
    detail: str


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds, Linux ``/proc``); None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        btime = next(float(line.split()[1]) for line in Path("/proc/stat").read_text()
                     .splitlines() if line.startswith("btime "))
        return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def holder_alive(pid: int, since: float) -> bool:
    """The process that started a run at ``since`` still runs: ``pid`` is alive and is not a
    later process that reused the number."""
    if not pid_alive(pid):
        return False
    started = _process_started(pid)
    return started is None or started <= since + 2.0


class Store:
    """A results database; one connection, used from one thread at a time."""

    def __init__(self, conn: sqlite3.Connection, where: str) -> None:
        self._conn = conn
        self.where = where

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ---------------------------------------------------------------------------
    def reap(self) -> list[int]:
        """Mark runs of this machine whose process is gone as interrupted; their ids."""
        me = socket.gethostname()
        rows = self._conn.execute(
            "SELECT id, pid, machine, started_at FROM runs WHERE status = 'running'").fetchall()
        dead = [(int(r[0]), int(r[1])) for r in rows
                if r[2] == me and not holder_alive(int(r[1]), float(r[3]))]
        with self._conn:
            for run_id, pid in dead:
                self._interrupt(run_id, f"stale: pid {pid} gone (killed or crashed)",
                                at=self._last_activity(run_id))
        return [run_id for run_id, _ in dead]

    def _last_activity(self, run_id: int) -> float:
        """The last time a run recorded anything: when a killed run stopped living."""
        row = self._conn.execute(
            "SELECT MAX(t) FROM (SELECT started_at AS t FROM runs WHERE id=:r "
            "UNION ALL SELECT recorded_at FROM host_results WHERE run_id=:r "
            "UNION ALL SELECT started_at FROM phase_results WHERE run_id=:r "
            "UNION ALL SELECT finished_at FROM phase_results WHERE run_id=:r)",
            {"r": run_id}).fetchone()
        return float(row[0]) if row and row[0] is not None else time.time()

    def _interrupt(self, run_id: int, why: str, at: float | None = None) -> None:
        now = time.time() if at is None else at
        self._conn.execute("UPDATE runs SET status='interrupted', finished_at=?, detail=? "
                           "WHERE id=? AND status='running'", (now, why, run_id))
        self._conn.execute("UPDATE phase_results SET status='interrupted', finished_at=? "
                           "WHERE run_id=? AND status='running'", (now, run_id))

    def record_run(self, *, kind: str, site: str, plan_version: str,
                   options: Mapping[str, Any] | None = None) -> int:
        self.reap()
        with self._conn:
            cur = self._conn.execute(
                "INSERT INTO runs (kind, site, plan_version, status, started_at, pid, machine,"
                " options) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (kind, site, plan_version, time.time(), os.getpid(), socket.gethostname(),
                 json.dumps(dict(options or {}), sort_keys=True)))
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, detail: str = "") -> None:
        if status not in RUN_STATES[1:]:
            raise ValueError(f"run status {status!r}: must be one of {RUN_STATES[1:]}")
        with self._conn:
            if status == "interrupted":
                self._interrupt(run_id, detail or "interrupted")
            else:
                self._conn.execute("UPDATE runs SET status=?, finished_at=?, detail=? "
                                   "WHERE id=?", (status, time.time(), detail, run_id))

    def history(self, *, site: str, kind: str | None = None,
                limit: int = 20) -> list[RunRecord]:
        """What a history command shows: the runs of ``site`` (of ``kind``), latest first,
        after reaping (a run whose holder is gone reads interrupted, with the time it lived)."""
        self.reap()
        return self.runs(site=site, kind=kind, limit=limit)

    def runs(self, *, site: str | None = None, kind: str | None = None,
             limit: int = 50) -> list[RunRecord]:
        """Latest first."""
        where, args = _filters(site=site, kind=kind)
        rows = self._conn.execute(
            f"SELECT id, kind, site, plan_version, status, started_at, finished_at, pid, "  # noqa: S608
            f"machine, options, detail FROM runs {where} ORDER BY id DESC LIMIT ?",
            (*args, limit)).fetchall()
        return [RunRecord(int(r[0]), r[1], r[2], r[3], r[4], float(r[5]),
                          None if r[6] is None else float(r[6]), int(r[7]), r[8],
                          json.loads(r[9]), r[10]) for r in rows]

    # -- phases and hosts ---------------------------------------------------------------
    def record_phase(self, run_id: int, phase: str, status: str, detail: str = "") -> None:
        now = time.time()
        with self._conn:
            self._conn.execute(
                "INSERT INTO phase_results (run_id, phase, status, started_at, detail) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(run_id, phase) DO UPDATE SET "
                "status=excluded.status, detail=excluded.detail, finished_at=?",
                (run_id, phase, status, now, detail, None if status == "running" else now))

    def phases(self, run_id: int) -> list[tuple[str, str, str]]:
        """``(phase, status, detail)`` of one run, in the order they started."""
        rows = self._conn.execute("SELECT phase, status, detail FROM phase_results WHERE "
                                  "run_id=? ORDER BY started_at, rowid", (run_id,)).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def record_result(self, run_id: int, phase: str, host: str, status: str, *,
                      stats: Mapping[str, int] | None = None, detail: str = "") -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO host_results (run_id, phase, host, status, stats, detail, "
                "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, phase, host) "
                "DO UPDATE SET status=excluded.status, stats=excluded.stats, "
                "detail=excluded.detail, recorded_at=excluded.recorded_at",
                (run_id, phase, host, status, json.dumps(dict(stats or {}), sort_keys=True),
                 detail, time.time()))

    def results_for(self, run_id: int, phase: str | None = None) -> list[HostResult]:
        sql = ("SELECT run_id, phase, host, status, stats, detail FROM host_results "
               "WHERE run_id=?")
        args: tuple[Any, ...] = (run_id,)
        if phase is not None:
            sql += " AND phase=?"
            args += (phase,)
        rows = self._conn.execute(sql + " ORDER BY phase, host", args).fetchall()
        return [HostResult(int(r[0]), r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    def attempts(self, kind: str, site: str) -> list[Attempt]:
        """Every host result of ``kind`` runs of ``site``, in record order."""
        rows = self._conn.execute(
            "SELECT h.run_id, h.recorded_at, h.phase, h.host, h.status, r.plan_version FROM "
            "host_results h JOIN runs r ON r.id=h.run_id WHERE r.kind=? AND r.site=? "
            "ORDER BY h.run_id, h.recorded_at, h.rowid", (kind, site)).fetchall()
        return [Attempt(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def succeeded(self, kind: str, site: str, plan_version: str, *,
                  phases: Sequence[str]) -> set[tuple[str, str]]:
        """``{(phase, host)}`` whose latest truth is a success under this plan version
        (:func:`provision.execute.resume.done`; ``phases`` in run order)."""
        return done(self.attempts(kind, site), plan_version, phases)


def _filters(**values: str | None) -> tuple[str, tuple[str, ...]]:
    parts = [(f"{k}=?", v) for k, v in values.items() if v is not None]
    if not parts:
        return "", ()
    return "WHERE " + " AND ".join(p for p, _ in parts), tuple(v for _, v in parts)


def open_store(url: str | Path) -> Store:
    """Open (creating if needed) the results database at ``url``."""
    path = sqlite_path(str(url))
    return Store(connect(path, SCHEMA), str(path))


@contextmanager
def site_lock(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock for ``what``; a second holder fails at once with one line."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise ExecutionError(f"{what}: another gpuctl run holds {lock_file} "
                                 f"(pid {holder}); wait for it or stop it") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
