"""The guard every long child of gpuctl runs under: ``python -m provision.execute.childguard``.

``gpuctl`` never starts ``ansible-playbook`` (or a rack's ``gpuctl burnin run``) directly: it
starts this guard, which starts the real command and owns everything below it. ansible-runner
puts its child in a session of its own, so a signal to gpuctl's process group never reaches
it; the guard makes the child die with gpuctl anyway:

- it asks the kernel for SIGTERM when gpuctl dies (``PR_SET_PDEATHSIG``) and also checks its
  parent pid every :data:`POLL_S` seconds (the death signal follows the forking *thread*);
- it is a child subreaper (``PR_SET_CHILD_SUBREAPER``): processes that leave the command's
  process group (ssh ControlPersist masters daemonise) are re-parented to the guard, not to
  init, so :func:`descendants` still finds them;
- on gpuctl's death, on SIGTERM/SIGINT (gpuctl cancelling) and when the command exits, it
  ends the whole tree: SIGINT to the command first (Ansible stops cleanly), then SIGKILL to
  every descendant after :data:`GRACE_S` (:data:`ORPHAN_GRACE_S` when gpuctl is gone), and
  exits only when none is left.

While it lives it is listed in the run directory's ``children/`` (one file per guard, named
by its pid, holding gpuctl's pid and the command), which is how a later run finds an orphan.
The command itself gets SIGKILL as its parent-death signal: if the guard is killed (a
``subprocess.run`` timeout kills it), its command goes too.

A command gpuctl runs on another host over SSH (a burn-in probe, a perftest server, mpirun
on the launcher) is no process of this machine; :func:`remote_command` is its guard: a
POSIX shell line that runs it in a session of its own and ends that session when the SSH
channel's stdin closes -- which sshd does when gpuctl closes the channel, and when
gpuctl's connection drops because gpuctl died.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

POLL_S = 0.1
GRACE_S = 2.0
"""How long the command may take to stop after SIGINT when gpuctl cancels (SIGTERM)."""
ORPHAN_GRACE_S = 0.3
"""The same when gpuctl is gone: nobody records anything, the tree must go at once."""
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


REMOTE_GRACE_S = 1
"""Seconds a remote command has between SIGTERM and SIGKILL once its channel closed."""

_REMOTE = (
    'exec 3<&0; setsid "$@" </dev/null 3<&- & c=$!; '
    '{ while read -r _; do :; done <&3; kill -TERM -$c; kill -TERM $c; '
    f'sleep {REMOTE_GRACE_S}; kill -KILL -$c; kill -KILL $c; }} 2>/dev/null & w=$!; '
    'exec 3<&-; wait $c; rc=$?; kill $w 2>/dev/null; exit $rc'
)


def remote_command(argv: Sequence[str]) -> str:
    """The shell line that runs ``argv`` on a remote host under the remote guard.

    ``setsid`` gives the command its own session and process group; a watcher reads the
    channel's stdin (the command gets ``/dev/null``) and at end of file -- the channel or
    the connection is gone -- sends SIGTERM to that group, then SIGKILL after
    :data:`REMOTE_GRACE_S`. The line exits with the command's own status."""
    return shlex.join(["sh", "-c", _REMOTE, "gpuctl-guard", *argv])


def _prctl(option: int, value: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: the poll still works
        pass


def _parents() -> dict[int, int]:
    """``{pid: ppid}`` of every process (from ``/proc/<pid>/stat``)."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry)] = int(fields[1])
    return out


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (children first found, grandchildren after)."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_tree(root: int, child: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGINT the command, wait up to ``grace`` s, then SIGKILL every descendant of ``root``
    until none is left (the guard reaps them: it is their subreaper)."""
    if child is not None and child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    for _ in range(200):
        below = descendants(root)
        if not below:
            break
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
        _reap()
    _reap()


def _die_with_guard() -> None:
    """In the command (between fork and exec): SIGKILL when the guard dies."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: python -m provision.execute.childguard REGISTRY PARENT -- "
                         "COMMAND...\n")
        return 2
    registry, parent, command = Path(argv[0]), int(argv[1]), argv[3:]
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        return 143  # gpuctl died before the death signal was armed
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    entry = registry / str(os.getpid())
    try:
        registry.mkdir(parents=True, exist_ok=True)
        entry.write_text(json.dumps({"parent": parent, "command": command}) + "\n")
    except OSError as exc:
        sys.stderr.write(f"gpuctl childguard: cannot register in {registry}: {exc}\n")
        return 2
    child: subprocess.Popen[bytes] | None = None
    try:
        try:
            child = subprocess.Popen(command, preexec_fn=_die_with_guard)
        except OSError as exc:
            sys.stderr.write(f"gpuctl childguard: cannot run {command[0]}: {exc}\n")
            return 127
        while child.poll() is None and not stop and os.getppid() == parent:
            time.sleep(POLL_S)
        rc = child.poll()
        if rc is None:
            end_tree(os.getpid(), child,
                     GRACE_S if os.getppid() == parent else ORPHAN_GRACE_S)
            return 130 if stop else 143
        end_tree(os.getpid(), None, 0.0)
        return rc
    finally:
        entry.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
