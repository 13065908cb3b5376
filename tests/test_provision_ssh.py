"""SSH helpers without a lab: unreachable hosts fail with one line, retries are bounded, and
an unknown host key is rejected (a tiny paramiko server on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from provision.errors import ExecutionError
from provision.execute import ssh


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_host_is_one_line() -> None:
    t = ssh.SshTarget("lab-gpu-09", "127.0.0.1", port=_free_port(),
                      known_hosts=Path("/dev/null"))
    with pytest.raises(ssh.Unreachable, match=r"ssh to lab-gpu-09 \(127.0.0.1\): unreachable"):
        ssh.connect(t, timeout=2)


def test_wait_for_ssh_is_bounded() -> None:
    t = ssh.SshTarget("h", "127.0.0.1", port=_free_port(), known_hosts=Path("/dev/null"))
    started = time.monotonic()
    # the last attempt's error, its type kept (preflight tells unreachable from the rest)
    with pytest.raises(ssh.Unreachable, match=r"after \d+ attempts in 1.5s"):
        ssh.wait_for_ssh(t, timeout=1.5, interval=0.2, attempt_timeout=0.5)
    assert time.monotonic() - started < 10


def test_wait_for_ssh_stops_within_seconds_when_cancelled() -> None:
    """A host that hangs (TCP accepted, no SSH banner ever) with a 600 s boot timeout: the
    cancel is seen within one capped attempt, not after the boot timeout."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        t = ssh.SshTarget("h", "127.0.0.1", port=mute.getsockname()[1],
                          known_hosts=Path("/dev/null"))
        started = time.monotonic()
        with pytest.raises(ssh.Cancelled, match="h: cancelled while waiting for SSH"):
            ssh.wait_for_ssh(t, timeout=600, interval=5, attempt_timeout=60,
                             cancelled=lambda: time.monotonic() - started > 0.5)
        assert time.monotonic() - started < 0.5 + ssh.CANCEL_CHECK_S + 1.0


@pytest.fixture
def server() -> Iterator[int]:
    """Accepts one SSH handshake with a fresh host key (nobody's known_hosts has it)."""
    key = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") \
        else paramiko.RSAKey.generate(2048)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = int(sock.getsockname()[1])

    def serve() -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        transport = paramiko.Transport(conn)
        transport.add_server_key(key)
        try:
            transport.start_server(server=paramiko.ServerInterface())
            time.sleep(1)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            transport.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        sock.close()
        thread.join(5)


def test_unknown_host_key_is_rejected(server: int, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    t = ssh.SshTarget("lab-gpu-01", "127.0.0.1", port=server, known_hosts=known,
                      key_file=None)
    with pytest.raises(ExecutionError, match=r"host key unknown \(not in .*known_hosts\)"):
        ssh.connect(t, timeout=5)
