"""SSH connections with verified host keys (paramiko, RejectPolicy + known_hosts), and the
bounded wait for a host to answer SSH.

Host-key checking is never turned off: an unknown or changed key is a failure that names the
host and the known_hosts file. Commands run through :mod:`provision.execute.remote`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from provision.errors import ExecutionError


class Unreachable(ExecutionError):
    """No SSH connection: nothing answered at the address (refused, timed out, no route)."""


class HostKeyChanged(ExecutionError):
    """The host answered with a key other than known_hosts' one: never retried, never trusted."""


@dataclass(frozen=True)
class SshTarget:
    host: str  # inventory name
    address: str
    user: str = "root"
    port: int = 22
    key_file: Path | None = None
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts


def connect(t: SshTarget, *, timeout: float = 10.0) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    try:
        if t.known_hosts is not None:
            client.load_host_keys(str(t.known_hosts))
        else:
            client.load_system_host_keys()
    except OSError as exc:
        raise ExecutionError(f"ssh to {t.host}: known_hosts {t.known_hosts}: {exc}") from exc
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(t.address, port=t.port, username=t.user,
                       key_filename=None if t.key_file is None else str(t.key_file),
                       timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                       allow_agent=t.key_file is None, look_for_keys=t.key_file is None)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyChanged(f"ssh to {t.host} ({t.address}): host key CHANGED — not "
                             f"{_kh(t)}'s key; refusing to connect") from exc
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise ExecutionError(f"ssh to {t.host} ({t.address}): host key unknown (not in "
                                 f"{_kh(t)}); add it after checking its fingerprint") from exc
        raise ExecutionError(f"ssh to {t.host} ({t.address}): {exc}") from exc
    except OSError as exc:
        client.close()
        raise Unreachable(f"ssh to {t.host} ({t.address}): unreachable "
                             f"({exc.strerror or exc})") from exc
    return client


def _kh(t: SshTarget) -> str:
    return str(t.known_hosts) if t.known_hosts else "~/.ssh/known_hosts"


CANCEL_CHECK_S = 3.0
"""Longest single SSH attempt of a wait: a host that is down never holds a cancel longer."""


class Cancelled(ExecutionError):
    """A wait gave up because the run was cancelled (SIGINT/SIGTERM)."""


def wait_for_ssh(t: SshTarget, *, timeout: float, interval: float = 2.0,
                 attempt_timeout: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep,
                 cancelled: Callable[[], bool] = lambda: False) -> int:
    """Retry until an SSH login works (bounded in time); return the number of attempts.
    A changed host key fails at once (it will not fix itself). ``cancelled`` is checked
    at least once a second (an attempt lasts at most :data:`CANCEL_CHECK_S`); a cancel
    raises :class:`Cancelled`."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        if cancelled():
            raise Cancelled(f"{t.host}: cancelled while waiting for SSH")
        attempts += 1
        try:
            connect(t, timeout=min(attempt_timeout, CANCEL_CHECK_S)).close()
            return attempts
        except ExecutionError as exc:
            if isinstance(exc, HostKeyChanged) or time.monotonic() + interval > deadline:
                raise type(exc)(f"{exc} (after {attempts} attempts in "
                                     f"{timeout:g}s)") from exc
        pause = time.monotonic() + interval
        while time.monotonic() < pause and not cancelled():
            sleep(min(0.5, max(0.0, pause - time.monotonic())))
