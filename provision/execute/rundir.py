"""A run's own directory: its temporary files and the guards of its long children.

Every provision run (taken under the site lock) gets ``SITE/.gpuctl/runs/<pid>/`` with
``tmp/`` (rendered inventories, ansible-runner private dirs) and ``children/`` (one entry
per live :mod:`provision.execute.childguard`). The directory goes on every exit path; one
left by a killed run is swept by the next run, which first ends any child of it still alive
(an orphan) and says so -- a run never goes on beside an earlier run's children.

The directory is this process's (it is named by its pid): while it lives it is the
process's temporary directory -- :mod:`tempfile`'s default and ``TMPDIR`` for children --
so no temp file of a run (gpuctl's, a library's, a child's) lands loose in ``/tmp``, and
:func:`guard` runs a local child under the child guard. Provisioning, burn-in and the
offline dry run each hold one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ExecutionError

RUNS = "runs"
END_WAIT_S = 5.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _is_guard(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"provision.execute.childguard" in cmdline


@dataclass(frozen=True)
class Orphan:
    guard: int
    parent: int
    command: tuple[str, ...]

    def describe(self) -> str:
        return (f"{os.path.basename(self.command[0]) if self.command else '?'} (guard pid "
                f"{self.guard}) of gpuctl pid {self.parent}")


@dataclass(frozen=True)
class RunDir:
    """The directory of one live run (``pid`` is the gpuctl process that owns it)."""

    path: Path

    @property
    def tmp(self) -> Path:
        return self.path / "tmp"

    @property
    def children(self) -> Path:
        return self.path / "children"

    def guarded(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run under the child guard (dies with this process, tree and all)."""
        return [sys.executable, "-m", "provision.execute.childguard", str(self.children),
                str(os.getpid()), "--", *argv]

    def guards(self) -> list[Orphan]:
        return _entries(self.children)

    def end_children(self, timeout: float = END_WAIT_S) -> list[Orphan]:
        """Ask every live guard of this run to end its tree; wait for them; SIGKILL the
        stragglers. The guards that were alive."""
        return _end(self.guards(), timeout)


def _entries(children: Path) -> list[Orphan]:
    out: list[Orphan] = []
    if not children.is_dir():
        return out
    for entry in sorted(children.iterdir()):
        try:
            pid = int(entry.name)
            data = json.loads(entry.read_text())
            orphan = Orphan(pid, int(data["parent"]), tuple(map(str, data["command"])))
        except (ValueError, KeyError, TypeError, OSError):
            entry.unlink(missing_ok=True)
            continue
        if _alive(pid) and _is_guard(pid):
            out.append(orphan)
        else:
            entry.unlink(missing_ok=True)
    return out


def _end(guards: Sequence[Orphan], timeout: float) -> list[Orphan]:
    for g in guards:
        with suppress(ProcessLookupError):
            os.kill(g.guard, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(g.guard) for g in guards) and time.monotonic() < deadline:
        time.sleep(0.05)
    for g in guards:
        if _alive(g.guard) and _is_guard(g.guard):
            from provision.execute.childguard import descendants

            for pid in [g.guard, *descendants(g.guard)]:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    return list(guards)


def sweep(state_dir: Path, note: Callable[[str], None]) -> None:
    """End the orphans of earlier runs and remove their directories (under the site lock).

    Raises ExecutionError when an orphan cannot be ended (then nothing runs beside it).
    """
    runs = state_dir / RUNS
    if not runs.is_dir():
        return
    for old in sorted(runs.iterdir()):
        if not old.is_dir() or not old.name.isdigit() or int(old.name) == os.getpid():
            continue
        owner = int(old.name)
        if _alive(owner):
            continue  # a live run (a rack's burn-in under this provision run): not an orphan
        live = _entries(old / "children")
        for orphan in live:
            note(f"ending an orphan of an earlier run: {orphan.describe()}")
        _end(live, END_WAIT_S)
        still = [o for o in live if _alive(o.guard)]
        if still:
            raise ExecutionError(f"an earlier run's {still[0].describe()} does not stop; "
                                 f"end it (kill -KILL -- -{still[0].guard}) and retry")
        shutil.rmtree(old, ignore_errors=True)


_ACTIVE: list[RunDir] = []


def active() -> RunDir | None:
    """The run directory this process holds now, if any."""
    return _ACTIVE[-1] if _ACTIVE else None


def guard(argv: Sequence[str]) -> list[str]:
    """``argv`` under the child guard of the active run directory (as is without one)."""
    rd = active()
    return rd.guarded(argv) if rd is not None else list(argv)


@contextmanager
def run_dir(state_dir: Path, note: Callable[[str], None]) -> Iterator[RunDir]:
    """This run's directory (call under the site lock when there is one): sweeps first,
    is the process's temporary directory while it lives, removed at exit."""
    sweep(state_dir, note)
    rd = RunDir(state_dir / RUNS / str(os.getpid()))
    if rd in _ACTIVE:  # the same process, one run inside another: one directory
        yield rd
        return
    rd.tmp.mkdir(parents=True, exist_ok=True)
    rd.children.mkdir(parents=True, exist_ok=True)
    saved = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(rd.tmp)
    os.environ["TMPDIR"] = str(rd.tmp)
    _ACTIVE.append(rd)
    try:
        yield rd
    finally:
        _ACTIVE.remove(rd)
        tempfile.tempdir = saved[0]
        if saved[1] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[1]
        rd.end_children()
        shutil.rmtree(rd.path, ignore_errors=True)
