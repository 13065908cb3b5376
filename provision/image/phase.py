"""The image phase for one node, observed step by step (side effects through the BMC client,
the boot services' records and SSH, all passed in).

1. A node that already runs the planned image digest (its ``/etc/gpuctl/image.json``, read
   over SSH with its pre-generated host key) is left alone unless ``reimage``.
2. Redfish one-time PXE + power cycle; the boot is followed in the records: DHCP lease, iPXE
   scripts, kernel, deploy ramdisk, disk image, the ramdisk's report (it verified the sha256
   of what it wrote) -- a missing step fails with where it stopped.
3. The ramdisk powers the node off; the boot device is set to disk (Continuous: BMCs such as
   sushy's libvirt driver keep a PXE override otherwise) and the node powered on.
4. First boot from disk: seed fetched, phone-home, then SSH with the host key known before
   imaging (never trust-on-first-use) and the digest the node runs, which must be the plan's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ExecutionError
from provision.execute import redfish, remote, ssh
from provision.execute.access import Access, HostTarget
from provision.execute.ansible import PlaybookResult
from provision.execute.rundir import RunDir
from provision.execute.steps import Outcome
from provision.image.bootplan import BootEntry, read_nodes
from provision.image.services import BootServices
from provision.image.services import deploy as deploy_services
from provision.image.services import request as services_request
from provision.image.watch import (
    BootStopped,
    BootWatch,
    Bounds,
    Cancelled,
    Records,
    SharedRecords,
    SshRecords,
)
from provision.image.watch import Node as WatchNode
from provision.plan.build import Plan
from provision.render.topo import services_address

DEPLOYED_FILE = "/etc/gpuctl/image.json"
"""Written by the node's seed on first boot: {"host", "site", "image_digest"}."""
POWER_OFF_S = 120.0  # the ramdisk powers off after its report; then it is forced off


def parse_deployed(text: str) -> str | None:
    """The image digest of a node's /etc/gpuctl/image.json text (None: not gpuctl's)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    digest = data.get("image_digest") if isinstance(data, dict) else None
    return digest if isinstance(digest, str) and digest else None


def running_digest(t: ssh.SshTarget, timeout: float = 5.0) -> str | None:
    """The digest the host runs; None when it is not reachable (or not imaged by gpuctl).
    A host that answers with a different host key is never trusted: that raises."""
    try:
        res = remote.run_once(t, ["cat", DEPLOYED_FILE], timeout=timeout)
    except ssh.HostKeyChanged:
        raise
    except ExecutionError:
        return None
    return parse_deployed(res.stdout) if res.rc == 0 else None


@dataclass(frozen=True)
class Planned:
    image: str
    digest: str


@dataclass
class Node:
    """One node's image phase: its SSH target, BMC client factory and boot watch."""

    name: str
    ssh: ssh.SshTarget
    bmc: Callable[[], redfish.RedfishClient]
    watch: BootWatch
    planned: Planned
    ssh_timeout: float = 10.0


def image_node(n: Node, *, reimage: bool = False,
               cancelled: Callable[[], bool] = lambda: False,
               started: Callable[[], None] = lambda: None,
               digest_of: Callable[[ssh.SshTarget], str | None] = running_digest,
               wait_ssh: Callable[..., int] = ssh.wait_for_ssh,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> Outcome:
    p = n.planned
    if not p.digest:
        return Outcome("failed", f"{n.name}: image {p.image} has no digest in the boot plan "
                                 "(gpuctl image build, then gpuctl image seed)")
    if not reimage:
        try:
            now = digest_of(n.ssh)
        except ExecutionError as exc:
            return Outcome("failed", str(exc))
        if now == p.digest:
            return Outcome("ok", f"image {p.image} {p.digest}: already running it, not "
                                 "re-imaged (--reimage forces it)")
    t0 = clock()
    try:
        n.watch.mark()
        bmc = n.bmc()
        try:
            started()
            bmc.set_one_time_boot("Pxe")
            action = bmc.power_cycle()
            n.watch.until("deployed")
            deployed = clock()
            bmc.set_boot("Hdd", "Continuous")
            _power_off(bmc, cancelled, clock, sleep)
            bmc.reset("On")
        finally:
            bmc.close()
        n.watch.until("phone-home", since=clock())
        booted = clock()
        wait_ssh(n.ssh, timeout=n.watch.bounds.fetch, interval=1.0,
                         attempt_timeout=n.ssh_timeout, cancelled=cancelled)
        got = digest_of(n.ssh)
    except (Cancelled, ssh.Cancelled):
        return Outcome("skipped", "cancelled while imaging (image not finished)")
    except BootStopped as exc:
        return Outcome("failed", f"image {p.image}: {exc}")
    except ExecutionError as exc:
        return Outcome("failed", str(exc))
    if got != p.digest:
        return Outcome("failed", f"{n.name}: after imaging it runs {got or 'no gpuctl image'}"
                                 f", planned {p.digest}")
    return Outcome("changed", f"image {p.image} {p.digest}: PXE once + {action}, written and "
                              f"verified in {deployed - t0:.0f} s, first boot + phone-home "
                              f"{booted - deployed:.0f} s, SSH host key verified",
                   {"changed": 1})


def _power_off(bmc: redfish.RedfishClient, cancelled: Callable[[], bool],
               clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    """Wait (bounded, cancel-checked) for the ramdisk to power the node off; force it."""
    deadline = clock() + POWER_OFF_S
    while bmc.power_state() != "Off":
        if cancelled():
            raise Cancelled(f"{bmc.target.host}: cancelled while waiting for power off")
        if clock() > deadline:
            bmc.reset("ForceOff")
            return
        sleep(0.5)


@dataclass(frozen=True)
class Imaging:
    """How a run's image phase observes its boots: the boot services' records, what they
    serve each node (``gpuctl image seed``'s boot plan), the bounds, and --reimage."""

    records: Records
    nodes: Mapping[str, BootEntry]
    bounds: Bounds = Bounds()
    reimage: bool = False
    services: BootServices | None = None  # deployed before the first boot (prepare)
    services_address: str = ""
    """The planned address of the host that runs the boot services: it cannot network-boot
    from itself, so the phase leaves it alone (it is installed first, another way)."""

    def serves(self, h: HostTarget) -> bool:
        """Whether ``h`` is the boot services host itself."""
        return bool(self.services_address) and h.ssh.address == self.services_address

    def prepare(self, *, playbooks: Path, workdir: RunDir | None,
                run_playbook: Callable[..., PlaybookResult],
                cancelled: Callable[[], bool]) -> Outcome | None:
        """Deploy the boot services the boots use (None: this site has none to deploy)."""
        if self.services is None:
            return None
        return deploy_services(self.services, playbooks=playbooks, workdir=workdir,
                               run_playbook=run_playbook, cancelled=cancelled)

    def image_host(self, h: HostTarget, bmc: Callable[[], redfish.RedfishClient], *,
                   ssh_timeout: float = 10.0, cancelled: Callable[[], bool] = lambda: False,
                   started: Callable[[], None] = lambda: None) -> Outcome:
        return _image_host(self, h, bmc, ssh_timeout=ssh_timeout, cancelled=cancelled,
                           started=started)


def _image_host(im: Imaging, h: HostTarget, bmc: Callable[[], redfish.RedfishClient], *,
                ssh_timeout: float, cancelled: Callable[[], bool],
                started: Callable[[], None]) -> Outcome:
    if im.serves(h):
        return Outcome("skipped", f"{h.name} runs the boot services ({h.ssh.address}): not "
                                  "network-booted from itself (install it first, by hand or "
                                  "from another provisioning host)")
    entry = im.nodes.get(h.name)
    if entry is None:
        return Outcome("failed", f"{h.name}: not in the boot plan (run gpuctl image seed)")
    if entry.address != h.ssh.address:
        return Outcome("failed", f"{h.name}: the boot plan reserves {entry.address}, SSH goes "
                                 f"to {h.ssh.address}; run gpuctl image seed again")
    watch = BootWatch(WatchNode(h.name, entry.address, entry.mac, entry.image), im.records,
                      im.bounds, cancelled=cancelled)
    return image_node(Node(h.name, h.ssh, bmc, watch, Planned(entry.image, entry.digest),
                           ssh_timeout), reimage=im.reimage, cancelled=cancelled,
                      started=started)


def site_imaging(state: Path, plan: Plan, *, reimage: bool = False,
                 bounds: Bounds | None = None, access: Access | None = None) -> Imaging | None:
    """The image phase of a real site: what ``gpuctl image seed`` planned for each node
    (``state/boot/nodes.json``), the boot services deployed to the provisioning host first
    (``state/boot_services.yml``) and observed there over SSH (the access file's
    ``boot_services.ssh``, else root at the plan's services address, host key checked).
    None when no node was seeded: the phase then only PXE-boots, power-cycles and waits
    for SSH. The DHCP bound is the access file's ``timeouts.dhcp_s`` unless ``bounds``."""
    nodes = read_nodes(state)
    if not nodes:
        return None
    acc = access or Access()
    svc = services_address(plan)
    records = SharedRecords(SshRecords(acc.boot_services_target(svc)))
    if bounds is None:
        bounds = Bounds(dhcp=acc.timeouts.dhcp_s) if acc.timeouts.dhcp_s else Bounds()
    return Imaging(records, nodes, bounds, reimage,
                   services_request(state, svc, acc), services_address=svc)
