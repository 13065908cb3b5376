"""Running commands and daemons for the lab: argv lists only, every wait bounded.

Daemons are started with ``posix_spawn`` in a new session (process group id == pid) and
identified afterwards by pid *and* start time (``/proc/<pid>/stat`` field 22), so a recycled
pid is never signalled by mistake.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from provision.errors import LabError
from provision.lab.state import ProcRecord

T = TypeVar("T")


def run(argv: Sequence[str], *, what: str, timeout: float = 30.0,
        env: Mapping[str, str] | None = None, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion; on failure raise ``LabError("<what>: ...")``."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL, env=None if env is None else dict(env),
        )
    except FileNotFoundError as exc:
        raise LabError(f"{what}: command {argv[0]!r} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: {argv[0]} did not finish within {timeout:g}s") from exc
    if check and result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        last = detail[-1] if detail else "no output"
        raise LabError(f"{what}: {argv[0]} exited with status {result.returncode}: {last}")
    return result


def start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a live, non-zombie ``pid``, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: an earlier gpuctl started it
        os.waitpid(pid, os.WNOHANG)


def alive(rec: ProcRecord) -> bool:
    """True when the recorded process is still running (same pid, same start time)."""
    _reap(rec.pid)
    return start_time(rec.pid) == rec.start_time


def inherited_fds() -> list[int]:
    """Descriptors above stderr that a child would inherit (not close-on-exec): what this
    process got from its parent, such as the fd of ``flock FILE cmd``. A lab daemon must
    not keep them: one holding the lab lock's fd kept the lock taken for as long as the
    lab was up, after the command that took it had exited."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        n = int(name)
        if n <= 2:
            continue
        try:
            if os.get_inheritable(n):
                found.append(n)
        except OSError:  # the directory's own fd, closed by now
            continue
    return sorted(found)


def spawn(argv: Sequence[str], *, label: str, log: Path,
          env: Mapping[str, str] | None = None) -> ProcRecord:
    """Start a daemon in its own session, stdin from /dev/null, stdout+stderr to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        pid = os.posix_spawnp(
            argv[0], list(argv), dict(os.environ if env is None else env),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
                *((os.POSIX_SPAWN_CLOSE, n) for n in inherited_fds()),
            ],
            setsid=True,
        )
    except OSError as exc:
        raise LabError(f"{label}: cannot start {argv[0]} ({exc.strerror})") from exc
    finally:
        os.close(fd)
    started = start_time(pid)
    if started is None:  # already gone: record it anyway, the readiness wait reports why
        _reap(pid)
        started = -1
    return ProcRecord(label=label, pid=pid, start_time=started, argv=tuple(argv))


def signal_group(rec: ProcRecord, sig: int) -> None:
    """Signal the recorded process group, only if its leader is still the recorded one."""
    if not alive(rec):
        return
    try:
        os.killpg(rec.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        raise LabError(f"{rec.label}: cannot signal pid {rec.pid} ({exc.strerror})") from exc


def stop(rec: ProcRecord, *, timeout: float = 5.0) -> None:
    """TERM the process group, wait (bounded), then KILL; no-op if already gone."""
    stop_all([rec], timeout=timeout)


def stop_all(records: Sequence[ProcRecord], *, timeout: float = 5.0) -> None:
    """Stop several recorded process groups at once: TERM all, wait, KILL the rest."""
    running = [r for r in records if alive(r)]
    for rec in running:
        signal_group(rec, signal.SIGTERM)
    if wait_gone([r.pid for r in running], timeout=timeout):
        return
    for rec in running:
        signal_group(rec, signal.SIGKILL)
    if not wait_gone([r.pid for r in running], timeout=2.0):
        left = [r.label for r in running if alive(r)]
        raise LabError(f"{left[0]}: survived SIGKILL" + (f" (and {len(left) - 1} more)"
                                                         if len(left) > 1 else ""))


def kill_pids(pids: Sequence[int], *, what: str, timeout: float = 3.0) -> None:
    """TERM then KILL a set of pids (e.g. everything left in a network namespace)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_gone(pids, timeout=timeout):
            return
    raise LabError(f"{what}: processes {sorted(pids)} survived SIGKILL")


def wait_gone(pids: Sequence[int], *, timeout: float) -> bool:
    """Wait until none of ``pids`` runs (zombies count as gone); False on timeout."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 2):
        for pid in pids:
            _reap(pid)
        if all(start_time(pid) is None for pid in pids):
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return False


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str,
             interval: float = 0.05, fail: Callable[[], str | None] | None = None) -> T:
    """Poll ``check`` until it returns a value (bounded by ``timeout`` and a count).

    ``what`` reads as the start of the timeout message ("lab host h1: sshd did not answer on
    10.0.0.2:22"). ``fail`` is polled too: when it returns a message (e.g. "lab fabric: ibsim
    exited: ..."), give up at once with that message instead of waiting for the timeout.
    """
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        value = check()
        if value is not None:
            return value
        if fail is not None and (reason := fail()) is not None:
            raise LabError(reason)
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise LabError(f"{what} within {timeout:g}s")


def log_tail(path: Path, lines: int = 1, *, prefer: tuple[str, ...] = ()) -> str:
    """The last non-empty line(s) of a log, for one-line error messages; with ``prefer``
    (substrings such as "ibpanic:"), the last lines containing one, when there are any."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    preferred = [line for line in kept if any(p in line for p in prefer)]
    kept = preferred or kept
    return " | ".join(kept[-lines:]) if kept else "(empty log)"
