"""The results database file: where it is, opening it, and one-line errors when it is
damaged or absent.

Provisioning runs and burn-in verdicts share one file per site, :func:`default_path`
(``SITE/.gpuctl/provision.db``), or the ``--store`` the user gives (:func:`sqlite_path`).
Every store opens its SQLite file through :func:`connect`. The connection it returns translates any ``sqlite3.DatabaseError`` raised
later (a damaged page is only found when a query reads it) into :class:`StoreError`, whose
message names the file and the ways out: move the file aside, restore a backup, or point
``--store`` elsewhere. A store that is only read (history) must already exist:
:func:`existing` says so instead of printing "0 runs".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provision.errors import UsageError


class StoreError(UsageError):
    """The results database cannot be opened or read (exit 2: unreadable input)."""


def damaged(path: Path, exc: BaseException) -> StoreError:
    """The one-line error for a store SQLite cannot read."""
    return StoreError(
        f"results store {path}: damaged or not a gpuctl database ({exc}); move it aside "
        f"(mv {path} {path}.damaged) to start a new history, restore it from a backup, "
        "or use --store PATH elsewhere")


class _Cursor(sqlite3.Cursor):
    where: Path = Path("?")

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.DatabaseError as exc:
            raise damaged(self.where, exc) from exc
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as exc:
            raise damaged(self.where, exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as exc:
            raise damaged(self.where, exc) from exc


class GuardedConnection(sqlite3.Connection):
    """A connection whose queries raise :class:`StoreError` instead of sqlite3 errors."""

    where: Path = Path("?")

    def _cursor(self) -> _Cursor:
        cur = super().cursor(_Cursor)
        cur.where = self.where
        return cur

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        return self._cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> _Cursor:
        cur = self._cursor()
        try:
            sqlite3.Cursor.executemany(cur, sql, parameters)
        except sqlite3.DatabaseError as exc:
            raise damaged(self.where, exc) from exc
        return cur

    def executescript(self, script: str, /) -> _Cursor:
        cur = self._cursor()
        try:
            sqlite3.Cursor.executescript(cur, script)
        except sqlite3.DatabaseError as exc:
            raise damaged(self.where, exc) from exc
        return cur

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.DatabaseError as exc:
            raise damaged(self.where, exc) from exc

    def __exit__(self, *exc: Any) -> Any:
        try:
            return super().__exit__(*exc)
        except sqlite3.DatabaseError as err:
            raise damaged(self.where, err) from err


def connect(path: Path, schema: str) -> GuardedConnection:
    """Open (creating) the database at ``path`` in WAL mode and apply ``schema``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"results store {path}: cannot create its directory "
                         f"({exc.strerror}); use --store PATH elsewhere") from exc
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level="DEFERRED",
                               factory=GuardedConnection)
    except sqlite3.Error as exc:
        raise StoreError(f"results store {path}: cannot open ({exc}); check the path and "
                         "its permissions, or use --store PATH elsewhere") from exc
    assert isinstance(conn, GuardedConnection)
    conn.where = path
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(schema)
    except StoreError as exc:
        conn.close()
        if "unable to open" in str(exc.__cause__) or "readonly" in str(exc.__cause__):
            raise StoreError(f"results store {path}: cannot open ({exc.__cause__}); check the "
                             "path and its permissions, or use --store PATH elsewhere"
                             ) from exc
        raise
    return conn


STATE_DIR = ".gpuctl"
"""A site's state directory (results DB, run lock, run directories, seeded known_hosts)."""


def default_path(site_dir: Path) -> Path:
    """``SITE/.gpuctl/provision.db``: the results DB of provisioning and burn-in."""
    return site_dir / STATE_DIR / "provision.db"


def seeded_known_hosts(site_dir: Path) -> Path | None:
    """``SITE/.gpuctl/known_hosts`` when ``gpuctl image seed`` wrote it (the host keys it
    pre-generated): what provision and burn-in verify SSH against unless told otherwise."""
    path = site_dir / STATE_DIR / "known_hosts"
    return path if path.is_file() else None


def sqlite_path(url: str) -> Path:
    """The file of ``sqlite:///path`` (absolute: ``sqlite:////abs``) or of a bare path."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise UsageError(f"--store {scheme}://...: only sqlite:///PATH (or a file path) is "
                         "supported by this build; PostgreSQL needs SQLAlchemy, which is "
                         "not installed")
    return Path(url)


def history_path(store: str | None, site_dir: Path) -> Path | None:
    """The DB a history command reads: an explicit ``--store`` must be a results DB
    (:func:`existing`); the site's default may not exist yet (None: nothing recorded)."""
    if store is not None:
        return existing(sqlite_path(store))
    path = default_path(site_dir)
    return path if path.exists() else None


def existing(path: Path) -> Path:
    """``path`` when it is a readable file; StoreError naming the way out otherwise."""
    if path.is_file():
        return path
    if path.exists():
        raise StoreError(f"results store {path}: not a file; use --store PATH of a results "
                         "database")
    parent = path.parent
    if not parent.is_dir():
        raise StoreError(f"results store {path}: no such file (and {parent} is not a "
                         "directory); use --store PATH of a results database")
    raise StoreError(f"results store {path}: no such file; nothing was recorded there yet "
                     "(a run creates it), or use --store PATH")
