"""Long children die with gpuctl: the child guard, the run directory and a real
``ansible-playbook`` (on localhost, local connection) killed with its gpuctl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from provision.execute import ansible, rundir
from provision.execute.childguard import descendants

ROOT = Path(__file__).resolve().parents[1]


def _with(marker: str) -> list[int]:
    """Live (non-zombie) ``sleep MARKER`` processes."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmd.split(b"\0")[:2] == [b"sleep", marker.encode()] and state != "Z":
            out.append(int(entry))
    return out


def _wait_for(fn, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.05)
    return bool(fn())


def _parent(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_guarded_tree_dies_with_its_parent_even_what_left_the_group(tmp_path: Path) -> None:
    marker = f"{60 + uuid.uuid4().int % 1000 / 1000:.3f}"
    # the command forks a daemon in a session of its own (as ssh ControlPersist does)
    parent = _parent(f"""
        import subprocess, sys, time
        from pathlib import Path
        from provision.execute.rundir import RunDir
        rd = RunDir(Path({str(tmp_path)!r}))
        subprocess.Popen(rd.guarded(["sh", "-c", "setsid sleep {marker} & sleep {marker}"]))
        print("started", flush=True)
        time.sleep(120)
    """)
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "started\n"
        assert _wait_for(lambda: len(_with(marker)) == 2, 10), _with(marker)
        assert len(rundir.RunDir(tmp_path).guards()) == 1
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        assert _wait_for(lambda: not _with(marker), 2.0), "children outlived their gpuctl"
        assert _wait_for(lambda: not list((tmp_path / "children").iterdir()), 2.0)
    finally:
        parent.kill()
        for pid in _with(marker):
            os.kill(pid, signal.SIGKILL)


def test_sweep_ends_an_orphan_of_a_dead_run_and_removes_its_directory(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    old = rundir.RunDir(tmp_path / rundir.RUNS / str(gone.pid))
    (old.tmp / "inventory.yml").parent.mkdir(parents=True)
    (old.tmp / "inventory.yml").write_text("all: {}\n")
    marker = f"{70 + uuid.uuid4().int % 1000 / 1000:.3f}"
    guard = subprocess.Popen(old.guarded(["sleep", marker]))
    try:
        assert _wait_for(lambda: bool(old.guards()) and bool(_with(marker)), 10)
        notes: list[str] = []
        with rundir.run_dir(tmp_path, notes.append) as mine:
            assert mine.path.name == str(os.getpid()) and mine.tmp.is_dir()
            assert notes == [f"ending an orphan of an earlier run: sleep (guard pid "
                             f"{guard.pid}) of gpuctl pid {os.getpid()}"]
            assert guard.wait(5) == 130 and not _with(marker)
            assert not old.path.exists()
        assert not (tmp_path / rundir.RUNS / str(os.getpid())).exists()
    finally:
        guard.kill()


def test_a_killed_guard_takes_its_command_along(tmp_path: Path) -> None:
    """subprocess.run's timeout SIGKILLs the guard itself: its command gets SIGKILL too."""
    marker = f"{75 + uuid.uuid4().int % 1000 / 1000:.3f}"
    rd = rundir.RunDir(tmp_path)
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(rd.guarded(["sleep", marker]), timeout=1.0)
    assert _wait_for(lambda: not _with(marker), 2.0), "the command outlived its guard"


def test_the_run_directory_is_the_process_temp_dir_and_guards_children(
        tmp_path: Path) -> None:
    import tempfile

    before = tempfile.gettempdir(), os.environ.get("TMPDIR")
    assert rundir.active() is None and rundir.guard(["true"]) == ["true"]
    with rundir.run_dir(tmp_path, lambda _: None) as rd:
        assert rundir.active() == rd
        with tempfile.TemporaryDirectory(prefix="gpuctl-x-") as scratch:
            assert Path(scratch).parent == rd.tmp
        assert os.environ["TMPDIR"] == str(rd.tmp)
        child = subprocess.run([sys.executable, "-c", "import tempfile; "
                                "print(tempfile.mkdtemp(prefix='gpuctl-child-'))"],
                               capture_output=True, text=True, check=True)
        assert Path(child.stdout.strip()).parent == rd.tmp  # a child's temp files too
        argv = rundir.guard(["true"])
        assert argv[1:3] == ["-m", "provision.execute.childguard"] and argv[-2:] == ["--",
                                                                                    "true"]
        assert subprocess.run(argv, check=False).returncode == 0
    assert not rd.path.exists() and rundir.active() is None
    assert (tempfile.gettempdir(), os.environ.get("TMPDIR")) == before


def _playbook(tmp: Path, marker: str) -> tuple[Path, Path]:
    book = tmp / "sleep.yml"
    book.write_text(textwrap.dedent(f"""\
        - hosts: all
          gather_facts: false
          tasks:
            - name: a long task
              ansible.builtin.command: sleep {marker}
        """))
    inv = tmp / "hosts.yml"
    inv.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return book, inv


def test_ansible_playbook_dies_with_a_killed_gpuctl(tmp_path: Path) -> None:
    marker = f"{80 + uuid.uuid4().int % 1000 / 1000:.3f}"
    book, inv = _playbook(tmp_path, marker)
    parent = _parent(f"""
        from pathlib import Path
        from provision.execute import ansible
        from provision.execute.rundir import RunDir
        ansible.run_playbook(ansible.PlaybookRequest(
            playbook=Path({str(book)!r}), inventory=Path({str(inv)!r}),
            workdir=RunDir(Path({str(tmp_path / "run")!r}))))
    """)
    try:
        assert _wait_for(lambda: bool(_with(marker)), 120), parent.stderr.read() \
            if parent.poll() is not None and parent.stderr else "no sleep task started"
        tree = descendants(parent.pid)
        assert any(b"ansible-playbook" in Path(f"/proc/{p}/cmdline").read_bytes()
                   for p in tree if Path(f"/proc/{p}").exists())
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        assert _wait_for(lambda: not any(Path(f"/proc/{p}").exists() and
                                         Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1]
                                         .split()[0] != "Z" for p in tree), 2.0), \
            "ansible-playbook or its task outlived gpuctl"
    finally:
        parent.kill()
        for pid in _with(marker):
            os.kill(pid, signal.SIGKILL)


def test_cancel_ends_a_playbook_within_seconds(tmp_path: Path) -> None:
    marker = f"{90 + uuid.uuid4().int % 1000 / 1000:.3f}"
    book, inv = _playbook(tmp_path, marker)
    started: list[float] = []

    def cancelled() -> bool:
        if not started and _with(marker):
            started.append(time.monotonic())
        return bool(started) and time.monotonic() - started[0] > 0.5

    res = ansible.run_playbook(ansible.PlaybookRequest(playbook=book, inventory=inv),
                               cancelled=cancelled)
    assert started, "the task never started"
    assert res.status == "canceled" and time.monotonic() - started[0] < 5.0
    assert not _with(marker)


def test_remote_guard_ends_the_command_when_its_stdin_closes() -> None:
    """What sshd does when the channel or the connection goes: the command's stdin ends.
    Run by dash and bash alike; the exit status is the command's."""
    from provision.execute.childguard import remote_command

    for shell in ("sh", "bash"):
        done = subprocess.Popen([shell, "-c", remote_command(["sh", "-c", "echo o; exit 3"])],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert done.wait(10) == 3 and done.stdout is not None and done.stdout.read() == "o\n"
        assert done.stdin is not None
        done.stdin.close()
        marker = f"{85 + uuid.uuid4().int % 1000 / 1000:.3f}"
        proc = subprocess.Popen([shell, "-c", remote_command(["sh", "-c", f"sleep {marker}"])],
                                stdin=subprocess.PIPE)
        try:
            assert _wait_for(lambda m=marker: bool(_with(m)), 5)  # type: ignore[misc]
            assert proc.stdin is not None
            proc.stdin.close()
            assert proc.wait(5) != 0
            assert _wait_for(lambda m=marker: not _with(m), 2.0), f"{shell}: it outlived"  # type: ignore[misc]
        finally:
            proc.kill()
            for pid in _with(marker):
                os.kill(pid, signal.SIGKILL)
