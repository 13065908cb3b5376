"""Playbook runs through ansible-runner, and offline checks through ``ansible-playbook``.

Each run gets a fresh private data dir under the run directory (removed afterwards) whose
``env/envvars`` turns on SSH pipelining and ControlPersist and keeps host-key checking on.
``ansible-playbook`` runs under :mod:`provision.execute.childguard`, so it (and its ssh
masters) die with gpuctl; cancelling asks the guard to end the tree, checked 4 times a second. Events go through the pure
functions of :mod:`provision.execute.events`; the caller gets a per-host tally after every
task and the final Ansible stats. The playbook runs inside a two-entry wrapper that imports
it and then runs :data:`~provision.execute.events.DONE_TASK` on every host still in play,
so each host's finish is an event of its own (``playbook_dir`` stays the playbook's own).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provision.errors import ExecutionError
from provision.execute import events
from provision.execute.rundir import RunDir, guard
from provision.resources import playbooks_dir

PLAYBOOKS = playbooks_dir()
"""The phase playbooks and their roles (package data: playbooks/ in the checkout)."""


@dataclass(frozen=True)
class Tuning:
    """Connection settings; ``defaults()`` is what plain Ansible does (for the benchmark)."""

    forks: int = 5
    pipelining: bool = True
    control_persist: str = "120s"
    timeout: int = 20

    @staticmethod
    def defaults() -> Tuning:
        return Tuning(forks=5, pipelining=False, control_persist="", timeout=10)


@dataclass(frozen=True)
class PlaybookRequest:
    playbook: Path
    inventory: Path
    limit: Sequence[str] = ()
    check: bool = False
    extravars: Mapping[str, Any] = field(default_factory=dict)
    tuning: Tuning = Tuning()
    workdir: RunDir | None = None  # the run's directory; None: a private one for this call


@dataclass(frozen=True)
class PlaybookResult:
    status: str  # ansible-runner's: successful, failed, canceled, timeout
    rc: int
    stats: dict[str, dict[str, int]]  # playbook_on_stats, per host
    tallies: dict[str, events.HostTally]


def tool_path() -> str:
    """``PATH`` with this Python's scripts directory first: ansible-playbook comes from the
    environment gpuctl is installed in, also when that environment is not activated."""
    scripts = sysconfig.get_path("scripts")
    rest = os.environ.get("PATH", os.defpath)
    return f"{scripts}{os.pathsep}{rest}" if scripts else rest


def ansible_env(tuning: Tuning, control_dir: Path) -> dict[str, str]:
    """Environment for ansible-playbook (also used for the offline checks)."""
    env = {
        "PATH": tool_path(),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": str(tuning.pipelining),
        "ANSIBLE_FORKS": str(tuning.forks),
        "ANSIBLE_TIMEOUT": str(tuning.timeout),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_LOCAL_TEMP": str(control_dir / "tmp"),
    }
    if tuning.control_persist:
        env["ANSIBLE_SSH_ARGS"] = (f"-o ControlMaster=auto -o ControlPersist="
                                   f"{tuning.control_persist}")
    else:
        env["ANSIBLE_SSH_ARGS"] = "-o ControlMaster=no"
    return env


def _event_callback(on_update: Callable[[dict[str, events.HostTally]], None],
                    box: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    def handle(event: dict[str, Any]) -> bool:
        ev = events.task_event(event)
        if ev is not None:
            box["tallies"] = events.apply(box["tallies"], ev)
            on_update(box["tallies"])
        stats = events.stats_event(event)
        if stats is not None:
            box["stats"] = stats
        return True  # keep the event in the artifacts dir (removed with it)

    return handle


def _with_done_task(private: Path, playbook: Path) -> Path:
    """A playbook that imports ``playbook`` and then marks each host that got through it."""
    wrapper = private / "phase.yml"
    wrapper.write_text(yaml.safe_dump([
        {"ansible.builtin.import_playbook": str(playbook)},
        {"name": "gpuctl: hosts that finished", "hosts": "all", "gather_facts": False,
         "tasks": [{"name": events.DONE_TASK,
                    "ansible.builtin.debug": {"msg": "finished"}}]},
    ], sort_keys=False))
    return wrapper


def _guarded_binary(private: Path, workdir: RunDir, playbook: Path) -> str:
    """A one-line script ansible-runner runs as its ``binary``: ansible-playbook under the
    child guard (ansible-runner takes a single executable path, and adds no playbook to a
    ``binary``'s arguments)."""
    exe = shutil.which("ansible-playbook", path=tool_path())
    if exe is None:
        raise ExecutionError("ansible-playbook not found; pip install ansible-core")
    script = private / "ansible-playbook"
    script.write_text("#!/bin/sh\nexec " + shlex.join(workdir.guarded([exe])) + ' "$@" '
                      + shlex.quote(str(playbook)) + "\n")
    script.chmod(0o700)
    return str(script)


SOCKET_PATH_MAX = 107
"""Longest path of a Unix socket on Linux (``sun_path`` holds 108 bytes with its NUL)."""
CONTROL_NAME_LEN = 40 + 1 + 17
"""What ssh adds to Ansible's control directory: ``/`` + the 40-hex ``%C`` hash, and the
``.XXXXXXXXXXXXXXXX`` suffix of the socket it creates before renaming it."""


def control_dir(private: Path) -> Path:
    """Where this run's SSH control sockets go: ``private/cp`` when a socket path fits
    there, else a new short directory in /tmp (a site under a deep path would otherwise
    fail every connection: "unix_listener: path ... too long", rc 4). The caller removes
    it."""
    inside = private / "cp"
    if len(str(inside)) + CONTROL_NAME_LEN <= SOCKET_PATH_MAX:
        inside.mkdir()
        return inside
    return Path(tempfile.mkdtemp(prefix="gpuctl-cp-", dir="/tmp"))


def run_playbook(req: PlaybookRequest, *,
                 on_update: Callable[[dict[str, events.HostTally]], None] = lambda _: None,
                 cancelled: Callable[[], bool] = lambda: False) -> PlaybookResult:
    """Run one playbook; never raises for failed hosts (they are in the result)."""
    import ansible_runner

    own = req.workdir is None
    workdir = req.workdir or RunDir(Path(tempfile.mkdtemp(prefix="gpuctl-run-")))
    workdir.tmp.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="ar-", dir=workdir.tmp))
    asked: list[bool] = []

    def cancel() -> bool:
        if cancelled() and not asked:
            asked.append(True)
            for guard in workdir.guards():  # the guard ends the tree; no SIGKILL of its group
                os.kill(guard.guard, 15)
        return False

    control = control_dir(private)
    try:
        (control / "tmp").mkdir()
        box: dict[str, Any] = {"tallies": {}, "stats": {}}
        cmdline = "--check --diff" if req.check else None
        book = _with_done_task(private, req.playbook)
        runner = ansible_runner.run(
            private_data_dir=str(private), project_dir=str(req.playbook.parent),
            playbook=str(book), inventory=str(req.inventory),
            limit=",".join(req.limit) if req.limit else None,
            forks=req.tuning.forks, extravars=dict(req.extravars), cmdline=cmdline,
            envvars=ansible_env(req.tuning, control), quiet=True,
            binary=_guarded_binary(private, workdir, book),
            settings={"pexpect_timeout": 0.25},
            event_handler=_event_callback(on_update, box),
            cancel_callback=cancel, rotate_artifacts=1, json_mode=False)
        status, rc = str(runner.status), int(runner.rc if runner.rc is not None else -1)
        if asked:
            status = "canceled"
        if status not in ("successful", "failed", "canceled") and not box["stats"]:
            tail = _tail(runner.stdout.read() if runner.stdout else "")
            raise ExecutionError(f"ansible-playbook {req.playbook.name}: {status} "
                                 f"(rc {rc}): {tail}")
        return PlaybookResult(status, rc, box["stats"], box["tallies"])
    finally:
        workdir.end_children()
        shutil.rmtree(control, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
        if own:
            shutil.rmtree(workdir.path, ignore_errors=True)


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def ansible_playbook(args: Sequence[str], *, inventory: Path, playbook: Path,
                     timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``ansible-playbook ARGS -i INVENTORY PLAYBOOK`` (argv list, no shell)."""
    exe = shutil.which("ansible-playbook", path=tool_path())
    if exe is None:
        raise ExecutionError("ansible-playbook not found; pip install ansible-core")
    with tempfile.TemporaryDirectory(prefix="gpuctl-ap-") as tmp:
        control = Path(tmp)
        (control / "tmp").mkdir()
        env = {**os.environ, **ansible_env(Tuning(), control)}
        try:
            return subprocess.run(guard([exe, *args, "-i", str(inventory), str(playbook)]),
                                  capture_output=True, text=True, env=env, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ExecutionError(f"ansible-playbook {' '.join(args)} {playbook.name}: no "
                                 f"answer within {timeout:g}s") from exc


_PLAY = re.compile(r"^play #\d+ \((?P<hosts>.*)\): (?P<name>.*?)\s*TAGS:")


@dataclass(frozen=True)
class ListedPlay:
    hosts: str  # the play's host pattern
    name: str
    tasks: tuple[str, ...]


def list_plays(inventory: Path, playbook: Path) -> list[ListedPlay]:
    """Every play of ``playbook`` (imports expanded), in order, with its task names, from
    one ``ansible-playbook --list-tasks`` (which loads and checks what ``--syntax-check``
    does); raises on errors."""
    proc = ansible_playbook(["--list-tasks"], inventory=inventory, playbook=playbook)
    if proc.returncode != 0:
        raise ExecutionError(f"{playbook.name}: --list-tasks failed: "
                             f"{_errors(proc.stderr or proc.stdout)}")
    plays: list[ListedPlay] = []
    hosts, name = "", ""
    tasks: list[str] = []
    for line in proc.stdout.splitlines():
        text = line.strip()
        m = _PLAY.match(text)
        if m:
            if name:
                plays.append(ListedPlay(hosts, name, tuple(tasks)))
            hosts, name, tasks = m["hosts"], m["name"], []
        elif name and "TAGS:" in text:
            tasks.append(text.split("TAGS:")[0].strip())
    if name:
        plays.append(ListedPlay(hosts, name, tuple(tasks)))
    return plays


def syntax_check(inventory: Path, playbook: Path) -> str | None:
    """None when ``--syntax-check`` passes, else its last error lines."""
    proc = ansible_playbook(["--syntax-check"], inventory=inventory, playbook=playbook)
    if proc.returncode == 0:
        return None
    return _errors(proc.stderr or proc.stdout)


def _errors(text: str) -> str:
    """Ansible's first error lines, else the last lines of its output."""
    errors = [line.strip() for line in text.splitlines() if "ERROR" in line]
    return " | ".join(errors[:2]) or _tail(text, 4)
