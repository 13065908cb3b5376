"""Commands on remote hosts: the one :class:`RemoteExecutor` protocol and its SSH
implementation: burn-in's probes and provisioning's one-shot commands (preflight's
:func:`clock_skew`) alike; :mod:`provision.execute.ssh` connects and waits for SSH.

Callers only ever use ``run(node, argv, timeout=...)``, ``start`` and ``close``;
argv lists are quoted (:func:`shlex.join`) for the remote shell, never joined by hand.
:class:`SshExecutor` keeps one paramiko connection per node (host keys verified against a
known_hosts file with ``RejectPolicy``: see :mod:`provision.execute.ssh`), opens a channel
per command (so commands on one node run in parallel) and bounds every command in time.
Every command runs under the remote guard (:func:`provision.execute.childguard.remote_command`),
so it ends when its channel closes -- on its timeout, on cancel, and when gpuctl dies -- and
a cancel (SIGTERM) stops every running command at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import paramiko

from provision.errors import ExecutionError
from provision.execute.childguard import remote_command
from provision.execute.ssh import SshTarget, connect

TIMED_OUT = 124
CANCELLED = 130


@dataclass(frozen=True)
class CommandResult:
    """Exit status (124 when our timeout stopped it), output, and wall time."""

    rc: int
    stdout: str
    stderr: str
    took_s: float


class Running(Protocol):
    """A command started in the background (a perftest server)."""

    def wait_for(self, text: str, timeout: float) -> bool:
        """True once ``text`` appeared in its stdout; False if it exited or time ran out."""
        ...

    def result(self) -> CommandResult:
        """Wait (bounded by the start timeout) for it to end."""
        ...


class RemoteExecutor(Protocol):
    """Runs commands on nodes. Implementations must allow concurrent calls from threads."""

    def run(self, node: str, argv: Sequence[str], *, timeout: float) -> CommandResult: ...

    def start(self, node: str, argv: Sequence[str], *, timeout: float) -> Running: ...

    def close(self) -> None: ...


class Collector:
    """Output of a running command, filled by a reader thread; ``wait_for`` watches it."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.cond = threading.Condition()
        self.final: CommandResult | None = None

    def feed(self, out: bytes = b"", err: bytes = b"") -> None:
        with self.cond:
            self.out += out
            self.err += err
            self.cond.notify_all()

    def finish(self, result: CommandResult) -> None:
        with self.cond:
            self.final = result
            self.cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        needle = text.encode()
        deadline = time.monotonic() + timeout
        with self.cond:
            while needle not in self.out:
                left = deadline - time.monotonic()
                if self.final is not None or left <= 0:
                    return needle in self.out
                self.cond.wait(min(left, 0.5))
            return True

    def result(self) -> CommandResult:
        with self.cond:
            while self.final is None:
                self.cond.wait(0.5)
            return self.final


EOF_GRACE_S = 2.0
"""How long a command's output may still come after its exit status (sshd sends the status
when the command exits, and may still hold output: the image phase once read a lease file
cut short, its separator missing, with exit 0)."""


class SshExecutor:
    """Commands over SSH to each node's in-band address; host keys always verified."""

    def __init__(self, targets: Mapping[str, SshTarget], *, connect_timeout: float = 10.0,
                 cancel: threading.Event | None = None) -> None:
        self._targets = dict(targets)
        self._timeout = connect_timeout
        self._clients: dict[str, paramiko.SSHClient] = {}
        self._locks = {node: threading.Lock() for node in self._targets}
        self._dead: dict[str, ExecutionError] = {}
        self._cancel = cancel or threading.Event()

    def _client(self, node: str) -> paramiko.SSHClient:
        if node not in self._targets:
            raise ExecutionError(f"ssh: no address for host {node!r}")
        with self._locks[node]:
            if self._cancel.is_set():
                raise ExecutionError(f"ssh to {node}: cancelled")
            dead = self._dead.get(node)
            if dead is not None:  # one connect timeout per node, not one per probe
                raise type(dead)(str(dead))
            client = self._clients.get(node)
            transport = client.get_transport() if client is not None else None
            if client is None or transport is None or not transport.is_active():
                try:
                    client = connect(self._targets[node], timeout=self._timeout)
                except ExecutionError as exc:
                    self._dead[node] = exc
                    raise
                self._clients[node] = client
            return client

    def _open(self, node: str, argv: Sequence[str]) -> paramiko.Channel:
        transport = self._client(node).get_transport()
        if transport is None:
            raise ExecutionError(f"ssh to {node}: connection lost")
        try:
            chan = transport.open_session(timeout=self._timeout)
            chan.settimeout(1.0)
            chan.exec_command(remote_command(argv))
        except (paramiko.SSHException, OSError) as exc:
            raise ExecutionError(f"ssh to {node}: cannot start {argv[0]} ({exc})") from exc
        return chan

    def _pump(self, node: str, argv: Sequence[str], chan: paramiko.Channel, sink: Collector,
              timeout: float, start: float) -> CommandResult:
        deadline = start + timeout
        rc = TIMED_OUT
        exited_at: float | None = None
        try:
            while True:
                got = False
                while chan.recv_ready():
                    sink.feed(out=chan.recv(65536))
                    got = True
                while chan.recv_stderr_ready():
                    sink.feed(err=chan.recv_stderr(65536))
                    got = True
                if chan.exit_status_ready() and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    # sshd may send the exit status before the last of the output: the
                    # output is whole at the channel's EOF (waited for EOF_GRACE_S at most)
                    exited_at = time.monotonic() if exited_at is None else exited_at
                    if chan.eof_received or chan.closed or \
                            time.monotonic() - exited_at > EOF_GRACE_S:
                        rc = chan.recv_exit_status()
                        break
                if time.monotonic() > deadline:
                    sink.feed(err=f"\ngpuctl: {argv[0]} stopped after {timeout:g}s\n".encode())
                    break
                if self._cancel.is_set():
                    sink.feed(err=f"\ngpuctl: {argv[0]} cancelled\n".encode())
                    rc = CANCELLED
                    break
                if chan.closed:
                    sink.feed(err=f"\ngpuctl: ssh to {node}: connection lost\n".encode())
                    rc = 255
                    break
                if not got:
                    time.sleep(0.02)
        except (paramiko.SSHException, OSError) as exc:
            sink.feed(err=f"\ngpuctl: ssh to {node}: {argv[0]} failed ({exc})\n".encode())
            rc = 255
        finally:
            chan.close()
        result = CommandResult(rc, sink.out.decode(errors="replace"),
                               sink.err.decode(errors="replace"), time.monotonic() - start)
        sink.finish(result)
        return result

    def run(self, node: str, argv: Sequence[str], *, timeout: float) -> CommandResult:
        start = time.monotonic()
        chan = self._open(node, argv)
        return self._pump(node, argv, chan, Collector(), timeout, start)

    def start(self, node: str, argv: Sequence[str], *, timeout: float) -> Collector:
        start = time.monotonic()
        chan = self._open(node, argv)
        sink = Collector()
        threading.Thread(target=self._pump, args=(node, argv, chan, sink, timeout, start),
                         daemon=True, name=f"remote-{node}-{argv[0]}").start()
        return sink

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def run_once(target: SshTarget, argv: Sequence[str], *, timeout: float) -> CommandResult:
    """One command on one host over its own connection, closed afterwards (the image
    phase's reads of a node or of the boot services host). Connecting is bounded by
    ``timeout`` as well; its errors (:class:`~provision.execute.ssh.Unreachable`,
    :class:`~provision.execute.ssh.HostKeyChanged`) propagate."""
    ex = SshExecutor({target.host: target}, connect_timeout=timeout)
    try:
        return ex.run(target.host, argv, timeout=timeout)
    finally:
        ex.close()


def clock_skew(ex: RemoteExecutor, node: str, *, timeout: float = 10.0,
               now: Callable[[], float] = time.time) -> float:
    """Seconds ``node``'s clock is ahead of ours (round-trip midpoint); an ExecutionError
    naming the node when it cannot be read."""
    before = now()
    res = ex.run(node, ["date", "+%s.%N"], timeout=timeout)
    after = now()
    if res.rc == TIMED_OUT:
        raise ExecutionError(f"ssh to {node}: date failed (timed out after {timeout:g}s)")
    if res.rc == CANCELLED:
        raise ExecutionError(f"ssh to {node}: date cancelled")
    lost = [ln for ln in res.stderr.splitlines() if ln.startswith(f"gpuctl: ssh to {node}:")]
    if res.rc == 255 and lost:
        raise ExecutionError(lost[-1].removeprefix("gpuctl: "))
    try:
        remote = float(res.stdout.strip())
    except ValueError as exc:
        raise ExecutionError(f"ssh to {node}: date printed {res.stdout.strip()!r}") from exc
    if res.rc != 0:
        raise ExecutionError(f"ssh to {node}: date exited {res.rc}")
    return remote - (before + after) / 2
