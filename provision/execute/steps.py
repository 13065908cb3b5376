"""Per-host steps of the phases that are not Ansible: preflight checks and the image phase.

Each step takes one host's targets plus the transports' factories and returns a
:class:`Outcome`; errors become a failed outcome naming the reason, so one bad host never
stops the others. The Redfish actions of a phase are also available as data
(:func:`image_actions`) for ``--dry-run``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from provision.errors import ExecutionError
from provision.execute import redfish, remote, ssh
from provision.execute.access import Access, HostTarget

if TYPE_CHECKING:
    from provision.execute.ansible import PlaybookResult
    from provision.execute.rundir import RunDir

T = TypeVar("T")
R = TypeVar("R")

SKEW_WARN_S = 1.0
SKEW_FAIL_S = 5.0


@dataclass(frozen=True)
class Outcome:
    status: str  # ok, changed, failed, unreachable, skipped
    detail: str = ""
    stats: Mapping[str, int] = field(default_factory=dict)


class Strategy(Protocol):
    """How per-host steps run: serially (tests) or on a thread pool (STYLE lesson 7)."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


class SerialExecutor:
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(i) for i in items]


class ThreadExecutor:
    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(fn, items))


class Imager(Protocol):
    """Images one host with its boot observed (:class:`provision.image.phase.Imaging`)."""

    def serves(self, h: HostTarget) -> bool:
        """Whether ``h`` runs the boot services (never network-booted from itself)."""
        ...

    def image_host(self, h: HostTarget, bmc: Callable[[], redfish.RedfishClient], *,
                   ssh_timeout: float, cancelled: Callable[[], bool],
                   started: Callable[[], None]) -> Outcome: ...

    def prepare(self, *, playbooks: Path, workdir: RunDir | None,
                run_playbook: Callable[..., PlaybookResult],
                cancelled: Callable[[], bool]) -> Outcome | None:
        """Before any host: deploy what the boots need (the boot services); None when
        there is nothing to deploy."""
        ...


@dataclass(frozen=True)
class StepSettings:
    env: Mapping[str, str]  # only the BMC credential variables
    ssh_timeout: float = 10.0
    boot_timeout: float = 600.0  # image: how long a host may take to come back on SSH
    boot_interval: float = 5.0
    image_note: str = ""  # appended to each image result (the access file's)
    imaging: Imager | None = None
    """The boots observed through the boot services (:mod:`provision.image.phase`); None
    where hosts do not network-boot (the access file says so: a namespace lab): PXE + power
    cycle, wait for SSH."""


def settings_for(access: Access, env: Mapping[str, str], boot_timeout: float | None = None,
                 imaging: Imager | None = None) -> StepSettings:
    """Step settings from the access file's timeouts (``boot_timeout``: the command line's)."""
    t = access.timeouts
    return StepSettings(env=env, ssh_timeout=t.ssh_s or 10.0,
                        boot_timeout=boot_timeout or t.boot_s or 600.0,
                        boot_interval=t.boot_interval_s or 5.0, image_note=access.image_note,
                        imaging=imaging)


ClientFactory = Callable[[HostTarget, StepSettings], redfish.RedfishClient]


def make_client_factory(files: Sequence[Path]) -> ClientFactory:
    paths = list(files)

    def make(h: HostTarget, s: StepSettings) -> redfish.RedfishClient:
        creds = redfish.credentials_for(h.name, env=s.env, files=paths)
        return redfish.RedfishClient(h.bmc, creds, timeout=s.ssh_timeout)

    return make


def preflight_host(h: HostTarget, s: StepSettings, client: ClientFactory) -> Outcome:
    """BMC reachable with our credentials and the system found; SSH with a verified host
    key; clock skew within bounds. A network-booted node (``s.imaging``) that SSH cannot
    reach yet passes on its BMC alone: it may be blank until the image phase images it."""
    notes: list[str] = []
    try:
        bmc = client(h, s)
        try:
            power = bmc.power_state()
        finally:
            bmc.close()
        notes.append(f"bmc ok, power {power}")
    except ExecutionError as exc:
        return Outcome("failed", str(exc))
    ex = remote.SshExecutor({h.name: h.ssh})
    try:
        skew = remote.clock_skew(ex, h.name)
    except ExecutionError as exc:
        if s.imaging is not None and isinstance(exc, ssh.Unreachable) \
                and not s.imaging.serves(h):
            # a network-booted node runs nothing before it is imaged (a blank disk)
            notes.append(f"ssh not reachable yet ({exc}): network-booted, imaged by the "
                         "image phase")
            return Outcome("ok", "; ".join(notes))
        return Outcome("unreachable", str(exc))
    finally:
        ex.close()
    notes.append(f"ssh ok, clock skew {skew:+.2f}s")
    if abs(skew) > SKEW_FAIL_S:
        return Outcome("failed", f"{h.name}: clock is {skew:+.1f}s off (limit "
                                 f"{SKEW_FAIL_S:g}s); fix time before bring-up")
    if abs(skew) > SKEW_WARN_S:
        notes.append("WARNING skew > 1s (chrony will fix it in base)")
    return Outcome("ok", "; ".join(notes))


def image_actions(h: HostTarget, s: StepSettings) -> list[str]:
    """What the image phase does to ``h``, in words (printed by --dry-run)."""
    system = h.bmc.system or "(its only system)"
    head = [f"PATCH {h.bmc.url} system {system}: Boot = Pxe, Once",
            f"POST {h.bmc.url} ComputerSystem.Reset: ForceRestart (On if it is off)"]
    if s.imaging is not None and s.imaging.serves(h):
        return [f"nothing: {h.name} runs the boot services at {h.ssh.address} (installed "
                "first, not network-booted from itself)"]
    if s.imaging is not None:
        return [f"unless {h.ssh.address} already runs the planned image digest:", *head,
                "follow DHCP lease, iPXE, deploy ramdisk, disk image, its report in the boot "
                "services' records", f"PATCH {h.bmc.url}: Boot = Hdd, Continuous; power on",
                "wait for seed + phone-home, then SSH (host key verified) and the digest"]
    return [*head,
            f"wait up to {s.boot_timeout:g}s for SSH on {h.ssh.address} (host key verified)"]


def image_host(h: HostTarget, s: StepSettings, client: ClientFactory, *,
               cancelled: Callable[[], bool] = lambda: False,
               started: Callable[[], None] = lambda: None) -> Outcome:
    """One-time PXE boot + power cycle through Redfish, then wait for SSH (bounded);
    ``started`` is called just before the host is changed. With ``s.imaging`` the boot is
    followed step by step and the node imaged (:mod:`provision.image.phase`)."""
    if cancelled():
        return Outcome("skipped", "cancelled")
    if s.imaging is not None:
        return s.imaging.image_host(h, lambda: client(h, s), ssh_timeout=s.ssh_timeout,
                                    cancelled=cancelled, started=started)
    try:
        bmc = client(h, s)
        try:
            started()
            bmc.set_one_time_boot("Pxe")
            action = bmc.power_cycle()
        finally:
            bmc.close()
    except ExecutionError as exc:
        return Outcome("failed", str(exc))
    try:
        attempts = ssh.wait_for_ssh(h.ssh, timeout=s.boot_timeout, interval=s.boot_interval,
                                    attempt_timeout=min(s.ssh_timeout, s.boot_timeout),
                                    cancelled=cancelled)
    except ssh.Cancelled:
        return Outcome("skipped", "cancelled while waiting for SSH (image not finished)")
    except ExecutionError as exc:
        return Outcome("unreachable", f"after {action}: {exc}")
    note = f" ({s.image_note})" if s.image_note else ""
    return Outcome("changed", f"PXE once + {action}; SSH back after {attempts} "
                              f"attempt(s){note}", {"changed": 1})
