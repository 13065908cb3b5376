"""The SSH executor against a real OpenSSH server on loopback (root only, like the lab):
commands, background commands, time limits and host-key verification; and that every
executor offers exactly the protocol's operations."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provision.errors import ExecutionError
from provision.execute import ansible
from provision.execute.remote import (
    Collector,
    CommandResult,
    RemoteExecutor,
    SshExecutor,
    clock_skew,
    run_once,
)
from provision.execute.rundir import RunDir
from provision.execute.ssh import HostKeyChanged, SshTarget, Unreachable
from provision.image.phase import running_digest
from provision.lab.simexec import InProcessSimExecutor, SimExecutor
from provision.sshkeys import generate_ed25519, write_private

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def test_collector_waits_for_text_or_exit() -> None:
    sink = Collector()
    sink.feed(out=b"starting\n")
    assert not sink.wait_for("Waiting", timeout=0.05)
    sink.feed(out=b"* Waiting for client *\n")
    assert sink.wait_for("Waiting", timeout=0.0)
    other = Collector()
    other.finish(CommandResult(1, "", "boom", 0.1))
    assert not other.wait_for("Waiting", timeout=5.0) and other.result().rc == 1


class LateOutputChannel:
    """A paramiko channel whose exit status is in before the last of its output, as sshd
    may send them: the output's tail and the EOF come 0.2 s after the status."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.chunks = [b"lease-1\n"]
        self.late = [b"--sep--\n", b"GET /x\n"]
        self.closed = False

    @property
    def eof_received(self) -> bool:
        return time.monotonic() - self.t0 > 0.2 and not self.late

    def _due(self) -> None:
        if self.late and time.monotonic() - self.t0 > 0.2:
            self.chunks += self.late
            self.late = []

    def recv_ready(self) -> bool:
        self._due()
        return bool(self.chunks)

    def recv(self, n: int) -> bytes:
        return self.chunks.pop(0)

    def recv_stderr_ready(self) -> bool:
        return False

    def exit_status_ready(self) -> bool:
        return True

    def recv_exit_status(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def test_output_after_the_exit_status_is_read_to_the_channels_eof() -> None:
    ex = SshExecutor({})
    res = ex._pump("n", ["cat"], LateOutputChannel(), Collector(), 5.0,  # type: ignore[arg-type]
                   time.monotonic())
    assert (res.rc, res.stdout) == (0, "lease-1\n--sep--\nGET /x\n")


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")
            and callable(getattr(cls, name))}


def test_executors_offer_exactly_the_protocol() -> None:
    """run, start, close and nothing else (no file upload: mpirun gets its hosts on the
    command line); no implementation grows an operation the others lack."""
    assert _public(RemoteExecutor) == {"run", "start", "close"}
    for cls in (SshExecutor, SimExecutor, InProcessSimExecutor):
        assert _public(cls) == _public(RemoteExecutor), cls.__name__


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, Path]]:
    if os.geteuid() != 0 or not os.path.exists(SSHD):
        pytest.skip("needs root and OpenSSH's sshd")
    d = tmp_path_factory.mktemp("sshd")
    host_pub = generate_ed25519(d / "host_key", comment="host")
    client_pub = generate_ed25519(d / "client_key", comment="client")
    write_private(d / "authorized_keys", client_pub + "\n")
    port = _free_port()
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n"
        f"StrictModes no\nPidFile {d / 'sshd.pid'}\nSubsystem sftp internal-sftp\n")
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, d / "client_key", d / "known_hosts"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _executor(port: int, key: Path, known: Path) -> SshExecutor:
    return SshExecutor({"n1": SshTarget("n1", "127.0.0.1", port=port, key_file=key,
                                        known_hosts=known)}, connect_timeout=5)


def test_ssh_executor_runs_quotes_and_bounds(sshd: tuple[int, Path, Path]) -> None:
    ex = _executor(*sshd)
    try:
        done = ex.run("n1", ["printf", "%s|", "a b", "$HOME", ";id"], timeout=20)
        assert done.rc == 0 and done.stdout == "a b|$HOME|;id|"
        failed = ex.run("n1", ["sh", "-c", "echo oops >&2; exit 3"], timeout=20)
        assert (failed.rc, failed.stderr.strip()) == (3, "oops")
        slow = ex.run("n1", ["sleep", "30"], timeout=1)
        assert slow.rc == 124 and "stopped after 1s" in slow.stderr
        bg = ex.start("n1", ["sh", "-c", "echo '* Waiting for client'; sleep 1; echo done"],
                      timeout=20)
        assert bg.wait_for("Waiting for client", timeout=10)
        assert bg.result().stdout.endswith("done\n")
        with pytest.raises(ExecutionError, match="no address for host 'zz'"):
            ex.run("zz", ["true"], timeout=5)
    finally:
        ex.close()


def test_unknown_host_key_is_refused(sshd: tuple[int, Path, Path], tmp_path: Path) -> None:
    port, key, _ = sshd
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{port} {generate_ed25519(tmp_path / 'k', comment='x')}\n")
    with pytest.raises(HostKeyChanged, match="host key CHANGED"):
        _executor(port, key, other).run("n1", ["true"], timeout=5)
    changed = SshTarget("n1", "127.0.0.1", port=port, key_file=key, known_hosts=other)
    with pytest.raises(HostKeyChanged):  # the image phase never trusts such a host
        running_digest(changed)
    empty = tmp_path / "empty"
    empty.write_text("")
    ex = _executor(port, key, empty)
    with pytest.raises(ExecutionError, match="host key unknown"):
        ex.run("n1", ["true"], timeout=5)
    with pytest.raises(ExecutionError, match="host key unknown"):  # remembered, not retried
        ex.start("n1", ["true"], timeout=5)


def test_run_once_and_running_digest(sshd: tuple[int, Path, Path], tmp_path: Path) -> None:
    """The image phase's one-shot reads go through the executor: status and output come
    back; a host with nothing at the address is Unreachable, which running_digest reads as
    "not imaged yet" (None)."""
    port, key, known = sshd
    t = SshTarget("n1", "127.0.0.1", port=port, key_file=key, known_hosts=known)
    done = run_once(t, ["sh", "-c", "echo hi; exit 4"], timeout=10)
    assert (done.rc, done.stdout) == (4, "hi\n")
    assert running_digest(t) is None  # no /etc/gpuctl/image.json on this machine
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    gone = SshTarget("n9", "127.0.0.1", port=closed, key_file=key, known_hosts=known)
    with pytest.raises(Unreachable, match=r"ssh to n9 \(127.0.0.1\): unreachable"):
        run_once(gone, ["true"], timeout=2)
    assert running_digest(gone, timeout=2) is None


def test_clock_skew_through_the_executor(sshd: tuple[int, Path, Path], tmp_path: Path) -> None:
    """Preflight's clock check is one command of the remote executor: the loopback host
    shares our clock; a host ahead by an hour reads +3600 s; failures name the host."""
    port, key, known = sshd
    ex = _executor(port, key, known)
    try:
        assert abs(clock_skew(ex, "n1")) < 1.0
        ahead = clock_skew(ex, "n1", now=lambda: time.time() - 3600)
        assert 3599 < ahead < 3601
    finally:
        ex.close()
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ExecutionError, match=r"^ssh to n1 \(127\.0\.0\.1\): host key unknown"):
        clock_skew(_executor(port, key, empty), "n1")


def _sleeping(marker: str) -> list[int]:
    """Live ``sleep MARKER`` processes (the sshd is on this machine: its commands are ours
    to see)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv[:2] == [b"sleep", marker.encode()] and state != "Z":
            out.append(int(entry))
    return out


def _gone_within(marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _sleeping(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _marker() -> str:
    return f"{70 + (os.getpid() * 7919 + time.monotonic_ns()) % 10000 / 10000:.4f}"


def test_remote_commands_end_with_their_channel(sshd: tuple[int, Path, Path]) -> None:
    """A command stopped by its time limit, or by a cancel, does not go on on the host."""
    import threading

    port, key, known = sshd
    cancel = threading.Event()
    ex = SshExecutor({"n1": SshTarget("n1", "127.0.0.1", port=port, key_file=key,
                                      known_hosts=known)}, connect_timeout=5, cancel=cancel)
    try:
        slow = _marker()
        assert ex.run("n1", ["sleep", slow], timeout=1).rc == 124
        assert _gone_within(slow, 2.0), f"sleep {slow} outlived its time limit"
        bg = _marker()
        server = ex.start("n1", ["sh", "-c", f"echo '* Waiting for client'; sleep {bg}"],
                          timeout=60)
        assert server.wait_for("Waiting for client", timeout=10) and _sleeping(bg)
        begin = time.monotonic()
        cancel.set()
        res = server.result()
        assert res.rc == 130 and "cancelled" in res.stderr
        assert time.monotonic() - begin < 1.0
        assert _gone_within(bg, 2.0), f"sleep {bg} outlived the cancel"
        with pytest.raises(ExecutionError, match="cancelled"):
            ex.run("n1", ["true"], timeout=5)
    finally:
        ex.close()


def test_remote_command_dies_with_a_killed_gpuctl(sshd: tuple[int, Path, Path]) -> None:
    """SIGKILL of the process holding the connection: the host ends the command (sshd closes
    the channel, the remote guard sees its stdin end)."""
    import signal
    import sys
    import textwrap

    port, key, known = sshd
    marker = _marker()
    code = textwrap.dedent(f"""
        from pathlib import Path
        from provision.execute.remote import SshExecutor
        from provision.execute.ssh import SshTarget
        ex = SshExecutor({{"n1": SshTarget("n1", "127.0.0.1", port={port},
                          key_file=Path({str(key)!r}), known_hosts=Path({str(known)!r}))}},
                         connect_timeout=5)
        srv = ex.start("n1", ["sh", "-c", "echo '* Waiting'; sleep {marker}"], timeout=120)
        assert srv.wait_for("Waiting", timeout=10)
        print("started", flush=True)
        srv.result()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "started\n"
        assert _sleeping(marker)
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        assert _gone_within(marker, 2.0), f"sleep {marker} outlived its killed gpuctl"
    finally:
        holder.kill()
        for pid in _sleeping(marker):
            os.kill(pid, signal.SIGKILL)


def test_a_playbook_from_a_deep_run_dir_keeps_its_ssh_control_socket_short(
        sshd: tuple[int, Path, Path], tmp_path: Path) -> None:
    """A site checked out under a deep path runs its plays there (SITE/.gpuctl/run/...):
    the SSH control socket (ControlMaster, as production runs use it) moves to a short
    directory instead of failing every connection with "path too long" (rc 4)."""
    port, key, known = sshd
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 4, "site", ".gpuctl", "run", "1")
    assert len(str(deep)) + ansible.CONTROL_NAME_LEN > ansible.SOCKET_PATH_MAX
    (deep / "tmp").mkdir(parents=True)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {
        "ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known}",
    }}}}))
    book = tmp_path / "echo.yml"
    book.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [
        {"name": "echo", "ansible.builtin.command": "echo hi", "changed_when": False}]}]))
    res = ansible.run_playbook(ansible.PlaybookRequest(book, inventory, workdir=RunDir(deep)))
    assert (res.status, res.rc) == ("successful", 0), res
    assert res.stats["n1"].get("ok", 0) >= 1 and not res.stats["n1"].get("unreachable")
