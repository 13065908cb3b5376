"""The burn-in record: burn-in tables in the site's results DB (the provisioning store's file).

Runs live in the shared ``runs`` table (kind ``burnin``, through
:class:`provision.execute.store.Store`); this module adds::

    burnin_outputs   every probe's argv, exit status, raw stdout/stderr (one row per unit,
                     written as soon as the unit finishes: a killed run keeps them)
    burnin_verdicts  node/test/rail/peer/metric/value/threshold/status/reason/fix
    burnin_versions  tool versions per node (driver, DCGM, nccl-tests, perftest)
    burnin_nodes     node lifecycle log: new -> burn-in -> passed|failed -> production
    burnin_fabric    rack-scoped fabric verify results (also from ``gpuctl fabric verify``)

``--resume`` copies the finished units of the last interrupted run of the same site, plan
version, rack and level into the new run, so only the missing ones run again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.burnin.judge import Verdict
from provision.execute.store import SCHEMA as RUNS_SCHEMA
from provision.execute.store import RunRecord, Store
from provision.resources import source_checkout
from provision.storefile import connect, default_path, sqlite_path

KIND = "burnin"
STATES = ("new", "burn-in", "passed", "failed", "production")
ENV_STORE = "GPUCTL_BURNIN_STORE"

SCHEMA = """
CREATE TABLE IF NOT EXISTS burnin_outputs (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    unit TEXT NOT NULL,
    node TEXT NOT NULL,
    test TEXT NOT NULL,
    kind TEXT NOT NULL,
    rail TEXT NOT NULL DEFAULT '',
    peer TEXT NOT NULL DEFAULT '',
    argv TEXT NOT NULL,
    rc INTEGER NOT NULL,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL,
    took_s REAL NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (run_id, unit)
);
CREATE TABLE IF NOT EXISTS burnin_verdicts (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    node TEXT NOT NULL,
    test TEXT NOT NULL,
    rail TEXT NOT NULL DEFAULT '',
    peer TEXT NOT NULL DEFAULT '',
    metric TEXT NOT NULL DEFAULT '',
    value REAL,
    threshold REAL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    fix TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS burnin_versions (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    node TEXT NOT NULL,
    tool TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (run_id, node, tool)
);
CREATE TABLE IF NOT EXISTS burnin_nodes (
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    run_id INTEGER,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS burnin_fabric (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    run_id INTEGER,
    ok INTEGER NOT NULL,
    result TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS burnin_nodes_by_site ON burnin_nodes(site, node, at);
"""


@dataclass(frozen=True)
class UnitOutput:
    """What one probe run printed: the raw record every verdict is derived from."""

    unit: str
    node: str
    test: str
    kind: str
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    took_s: float
    rail: str = ""
    peer: str = ""


@dataclass(frozen=True)
class NodeState:
    node: str
    state: str
    reason: str
    run_id: int | None
    at: float


class BurninStore:
    """Burn-in tables plus the shared runs table; one connection, one thread."""

    def __init__(self, conn: sqlite3.Connection, where: str) -> None:
        self.conn = conn
        self.runs = Store(conn, where)
        self.where = where

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> BurninStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ---------------------------------------------------------------------------
    def start_run(self, site: str, plan_version: str, options: dict[str, Any]) -> int:
        return self.runs.record_run(kind=KIND, site=site, plan_version=plan_version,
                                    options=options)

    def finish_run(self, run_id: int, status: str, detail: str = "") -> None:
        self.runs.finish_run(run_id, status, detail)

    def resumable(self, site: str, plan_version: str, rack: str, level: str) -> int | None:
        """The latest interrupted (or failed mid-way) run of the same rack, level and plan."""
        self.runs.reap()
        for run in self.runs.runs(site=site, kind=KIND, limit=200):
            if run.plan_version != plan_version or run.status == "running":
                continue
            if run.options.get("rack") != rack or run.options.get("level") != level:
                continue
            return run.id if run.status == "interrupted" else None
        return None

    def copy_outputs(self, source: int, target: int) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO burnin_outputs (run_id, unit, node, test, kind, rail, "
                "peer, argv, rc, stdout, stderr, took_s, recorded_at) SELECT ?, unit, node, "
                "test, kind, rail, peer, argv, rc, stdout, stderr, took_s, recorded_at FROM "
                "burnin_outputs WHERE run_id=?", (target, source))
        return cur.rowcount

    # -- outputs, verdicts, versions ---------------------------------------------------
    def record_output(self, run_id: int, out: UnitOutput) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO burnin_outputs (run_id, unit, node, test, kind, rail, "
                "peer, argv, rc, stdout, stderr, took_s, recorded_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, out.unit, out.node, out.test, out.kind, out.rail, out.peer,
                 json.dumps(list(out.argv)), out.rc, out.stdout, out.stderr, out.took_s,
                 time.time()))

    def outputs(self, run_id: int) -> dict[str, UnitOutput]:
        rows = self.conn.execute(
            "SELECT unit, node, test, kind, argv, rc, stdout, stderr, took_s, rail, peer "
            "FROM burnin_outputs WHERE run_id=? ORDER BY unit", (run_id,)).fetchall()
        return {r[0]: UnitOutput(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), int(r[5]),
                                 r[6], r[7], float(r[8]), r[9], r[10]) for r in rows}

    def record_verdicts(self, run_id: int, verdicts: list[Verdict]) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM burnin_verdicts WHERE run_id=?", (run_id,))
            self.conn.executemany(
                "INSERT INTO burnin_verdicts (run_id, seq, node, test, rail, peer, metric, "
                "value, threshold, status, reason, fix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                [(run_id, i, v.node, v.test, v.rail or "", v.peer or "", v.metric or "",
                  v.value, v.threshold, v.status, v.reason, v.fix)
                 for i, v in enumerate(verdicts)])

    def verdicts(self, run_id: int) -> list[Verdict]:
        rows = self.conn.execute(
            "SELECT node, test, status, reason, rail, metric, value, threshold, peer, fix "
            "FROM burnin_verdicts WHERE run_id=? ORDER BY seq", (run_id,)).fetchall()
        return [Verdict(r[0], r[1], r[2], r[3], r[4] or None, r[5] or None, r[6], r[7],
                        r[8] or None, r[9]) for r in rows]

    def record_versions(self, run_id: int, node: str, versions: dict[str, str]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO burnin_versions (run_id, node, tool, version) "
                "VALUES (?, ?, ?, ?)", [(run_id, node, t, v) for t, v in sorted(versions.items())])

    def versions(self, run_id: int) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for node, tool, version in self.conn.execute(
                "SELECT node, tool, version FROM burnin_versions WHERE run_id=? ORDER BY node, "
                "tool", (run_id,)).fetchall():
            out.setdefault(node, {})[tool] = version
        return out

    # -- node lifecycle ----------------------------------------------------------------
    def set_state(self, site: str, node: str, state: str, reason: str = "",
                  run_id: int | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"node state {state!r}: must be one of {', '.join(STATES)}")
        with self.conn:
            self.conn.execute("INSERT INTO burnin_nodes (site, node, state, reason, run_id, at)"
                              " VALUES (?, ?, ?, ?, ?, ?)",
                              (site, node, state, reason, run_id, time.time()))

    def node_states(self, site: str) -> dict[str, NodeState]:
        """The current state of every node of ``site`` that has one."""
        rows = self.conn.execute(
            "SELECT node, state, reason, run_id, at FROM burnin_nodes WHERE site=? "
            "ORDER BY at, rowid", (site,)).fetchall()
        return {r[0]: NodeState(r[0], r[1], r[2], r[3], float(r[4])) for r in rows}

    def node_history(self, site: str, node: str) -> list[NodeState]:
        rows = self.conn.execute(
            "SELECT node, state, reason, run_id, at FROM burnin_nodes WHERE site=? AND node=? "
            "ORDER BY at, rowid", (site, node)).fetchall()
        return [NodeState(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    # -- fabric verify -----------------------------------------------------------------
    def record_fabric(self, site: str, ok: bool, result: str, run_id: int | None = None) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO burnin_fabric (site, run_id, ok, result, at) "
                              "VALUES (?, ?, ?, ?, ?)", (site, run_id, int(ok), result,
                                                         time.time()))

    def fabric_results(self, site: str) -> list[tuple[int | None, bool, str]]:
        rows = self.conn.execute("SELECT run_id, ok, result FROM burnin_fabric WHERE site=? "
                                 "ORDER BY id", (site,)).fetchall()
        return [(r[0], bool(r[1]), r[2]) for r in rows]

    def burnin_runs(self, site: str, limit: int = 20) -> list[RunRecord]:
        """The burn-in runs of ``site``, latest first, after reaping (see Store.history)."""
        return self.runs.history(site=site, kind=KIND, limit=limit)


def open_burnin_store(url: str | Path) -> BurninStore:
    """Open (creating) the results DB at ``url`` with the runs and burn-in tables."""
    path = sqlite_path(str(url))
    return BurninStore(connect(path, RUNS_SCHEMA + SCHEMA), str(path))


def store_url(store: str | None, site_dir: Path) -> str:
    """The results DB a burn-in command uses: ``--store``, else ``$GPUCTL_BURNIN_STORE``,
    else the site's own (``SITE/.gpuctl/provision.db``)."""
    return store or os.environ.get(ENV_STORE) or str(default_path(site_dir))


def record_fabric_verify(site: str, result: Mapping[str, Any] | str,
                         site_dir: Path | None = None) -> str:
    """Hook for ``gpuctl fabric verify``: store its result for ``site`` (by name).

    The DB is ``$GPUCTL_BURNIN_STORE``, else the existing results DB of ``site_dir``
    (``SITE/.gpuctl/provision.db``), else, without a ``site_dir``, that of
    ``inventory/sites/<site>`` under the current directory or the checkout. A verify never
    creates a DB of its own: without one, nothing is recorded and the answer says so.
    """
    env = os.environ.get(ENV_STORE)
    if env:
        url: str | Path = env
    else:
        if site_dir is not None:
            dbs = [default_path(site_dir)]
        else:
            checkout = source_checkout()
            dbs = [default_path(base / "inventory" / "sites" / site)
                   for base in (Path.cwd(), *([checkout] if checkout else []))]
        found = next((d for d in dbs if d.is_file()), None)
        if found is None:
            return f"no results DB {dbs[0]} (a provision or burn-in run makes it): not recorded"
        url = found
    data = dict(result) if not isinstance(result, str) else _loads(result)
    with open_burnin_store(url) as store:
        store.record_fabric(site, bool(data.get("ok", False)), json.dumps(data, sort_keys=True))
        return store.where


def _loads(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {"ok": False, "raw": text}
    return data if isinstance(data, dict) else {"ok": False, "raw": data}
