"""Waiting for a node's network boot, step by step, from what the boot services record.

The image phase reads Kea's lease file and the HTTP access log (:class:`FileRecords` on this
machine, :class:`SshRecords` on the provisioning host) about once a second and follows one
node through :func:`provision.image.observe.boot_progress`. Each step has its own bound,
counted from the moment the step before it was seen (:class:`Bounds`); a step that does not
come in time ends the wait with a :class:`BootStopped` naming it, e.g. ``no DHCP lease for
52:54:00:b0:07:02 (lab-gpu-02) within 120 s``. Only what happened after :meth:`BootWatch.mark`
counts: an earlier boot's lease and requests never satisfy a step. Cancel is checked at
least once a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from provision.errors import ExecutionError
from provision.execute import remote, ssh
from provision.image import observe

LEASE_FILE = "/var/lib/kea/kea-leases4.csv"
ACCESS_LOG = "/srv/gpuctl-boot/log/access.log"
"""Where the boot_services role keeps them (boot_services_kea_lease_dir, _root/log)."""
POLL_S = 1.0
CANCEL_CHECK_S = 0.5


class Records(Protocol):
    """The boot services' records as text: (Kea lease file, HTTP access log)."""

    def read(self) -> tuple[str, str]: ...


@dataclass(frozen=True)
class FileRecords:
    leases: Path
    access_log: Path

    def read(self) -> tuple[str, str]:
        return _text(self.leases), _text(self.access_log)


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ExecutionError(f"boot services record {path}: cannot read ({exc.strerror})") \
            from exc


_SEP = "--gpuctl-records--"


@dataclass(frozen=True)
class SshRecords:
    """The records on the provisioning host, over SSH (host key verified)."""

    target: ssh.SshTarget
    leases: str = LEASE_FILE
    access_log: str = ACCESS_LOG
    timeout: float = 5.0

    def read(self) -> tuple[str, str]:
        script = f'cat "$1" 2>/dev/null; echo {_SEP}; cat "$2" 2>/dev/null; true'
        res = remote.run_once(self.target, ["sh", "-c", script, "sh", self.leases,
                                            self.access_log], timeout=self.timeout)
        if res.rc != 0 or _SEP not in res.stdout:
            raise ExecutionError(f"boot services on {self.target.address}: cannot read "
                                 f"{self.leases} and {self.access_log} (exit {res.rc})")
        leases, _, log = res.stdout.partition(_SEP + "\n")
        return leases, log


RECORDS_GRACE_S = 30.0
"""How long the records may be unreadable (an SSH hiccup to the provisioning host) before
every node's watch fails; meanwhile the watches see the last good read."""


class SharedRecords:
    """One read per ``max_age`` seconds for every node's watch (a 1,000-node image phase
    makes one SSH call a second to the provisioning host, not 1,000). A read that fails
    after a good one is retried each ``max_age`` for ``grace`` seconds before it fails the
    watches: one lost SSH read must not fail an hour of imaging."""

    def __init__(self, inner: Records, max_age: float = POLL_S,
                 clock: Callable[[], float] = time.monotonic,
                 grace: float = RECORDS_GRACE_S) -> None:
        self.inner = inner
        self.max_age = max_age
        self.clock = clock
        self.grace = grace
        self._lock = threading.Lock()
        self._at: float | None = None
        self._good: float | None = None
        self._text = ("", "")

    def read(self) -> tuple[str, str]:
        with self._lock:
            now = self.clock()
            if self._at is None or now - self._at >= self.max_age:
                self._at = now
                try:
                    self._text = self.inner.read()
                except ssh.HostKeyChanged:
                    raise  # not a hiccup
                except ExecutionError:
                    if self._good is None or now - self._good > self.grace:
                        raise
                else:
                    self._good = now
            return self._text


@dataclass(frozen=True)
class Bounds:
    """Seconds each step may take after the one before it was seen."""

    dhcp: float = 120.0  # power cycle -> DHCP lease (firmware POST, PXE ROM)
    fetch: float = 60.0  # each iPXE fetch (boot script, node script, kernel, initrd)
    image: float = 900.0  # the ramdisk boots, fetches the disk image, writes, verifies
    first_boot: float = 600.0  # boot from disk -> seed fetch -> phone-home (cloud-init)

    def of(self, step: str) -> float:
        if step == "dhcp":
            return self.dhcp
        if step in ("image", "deployed"):
            return self.image
        if step in ("seed", "phone-home"):
            return self.first_boot
        return self.fetch


@dataclass(frozen=True)
class Node:
    """What identifies one node's boot in the records."""

    host: str
    address: str  # planned in-band address (the reserved lease)
    mac: str  # "" when the delivery manifest has none (then the lease is found by hostname)
    image: str  # image name, the folder under /images/


class BootStopped(ExecutionError):
    """A step did not come within its bound, or the deploy ramdisk reported a failure."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


class Cancelled(ExecutionError):
    """The run was cancelled while waiting."""


@dataclass(frozen=True)
class _Mark:
    lease_expire: int  # the node's lease expiry before the boot (0: none)
    requests: int  # access log requests before the boot


class BootWatch:
    """Follows one node's boot; :meth:`mark` before the power cycle, then :meth:`until`."""

    def __init__(self, node: Node, records: Records, bounds: Bounds = Bounds(), *,
                 cancelled: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, poll: float = POLL_S) -> None:
        self.node = node
        self.records = records
        self.bounds = bounds
        self.cancelled = cancelled
        self.clock = clock
        self.sleep = sleep
        self.poll = poll
        self._mark = _Mark(0, 0)
        self.seen: dict[str, float] = {}  # step -> when it was first seen (clock)

    def _lease_of(self, leases: Sequence[observe.Lease]) -> observe.Lease | None:
        n = self.node
        return next((ls for ls in leases if n.mac and ls.hwaddr == n.mac.lower()), None) or \
            next((ls for ls in leases if ls.hostname.split(".")[0] == n.host), None)

    def mark(self) -> None:
        """Remember how far the records go, so only what comes next counts."""
        leases_text, log_text = self.records.read()
        lease = self._lease_of(observe.parse_leases(leases_text))
        self._mark = _Mark(lease.expire if lease else 0,
                           len(observe.parse_access_log(log_text)))
        self.seen.clear()

    def progress(self) -> list[observe.Step]:
        """The node's steps since :meth:`mark`."""
        leases_text, log_text = self.records.read()
        leases = [ls for ls in observe.parse_leases(leases_text)
                  if ls.expire > self._mark.lease_expire]
        requests = observe.parse_access_log(log_text)
        if len(requests) >= self._mark.requests:
            requests = requests[self._mark.requests:]  # (a shorter log was rotated: all new)
        n = self.node
        return observe.boot_progress(n.host, n.address, n.mac, n.image, leases, requests)

    def until(self, last: str, *, since: float | None = None) -> list[observe.Step]:
        """Wait until every step up to ``last`` is done; raise :class:`BootStopped` naming
        the first one that does not come within its bound (counted from when the step
        before it was seen, the first from ``since`` or now)."""
        start = self.clock() if since is None else since
        while True:
            steps = self.progress()
            names = [s.name for s in steps]
            if last not in names:
                raise ValueError(f"no boot step {last!r} (steps: {', '.join(names)})")
            wanted = steps[:names.index(last) + 1]
            now = self.clock()
            previous, before = start, ""
            for step in wanted:
                if step.done:
                    previous = max(start, self.seen.setdefault(step.name, now))
                    before = step.name
                    continue
                if step.name == "deployed" and step.detail.startswith("deploy ramdisk:"):
                    raise BootStopped(step.name, f"{self.node.host}: {step.detail}")
                bound = self.bounds.of(step.name)
                if now - previous > bound:
                    raise BootStopped(step.name, _late(self.node, step, bound, before))
                break
            else:
                return steps
            self._pause()

    def _pause(self) -> None:
        until = self.clock() + self.poll
        while True:
            if self.cancelled():
                raise Cancelled(f"{self.node.host}: cancelled while waiting for its boot")
            left = until - self.clock()
            if left <= 0:
                return
            self.sleep(min(CANCEL_CHECK_S, left))


def _late(node: Node, step: observe.Step, bound: float, before: str) -> str:
    if step.name == "dhcp":
        return f"no DHCP lease for {node.mac or node.host} ({node.host}) within {bound:g} s"
    if step.name == "phone-home":
        return f"{node.host}: no phone-home within {bound:g} s (seed fetched; cloud-init " \
               "did not finish)"
    after = f" after {before}" if before else ""
    return f"{node.host}: stopped{after}: {step.detail} within {bound:g} s"
