"""The lab's on-disk layout and its state record (``state.json``).

The state is written *before* each kernel object is made and right after each process is
started, so ``down`` can clean up after a crash at any point of ``up``. Layout of a lab dir::

    <lab_dir>/
      .gpuctl-lab            marker: this directory belongs to a gpuctl lab (down removes it)
      state.json             LabState (below)
      admin_ed25519[.pub]    the lab's admin key pair (root on every host), mode 0600
      known_hosts            each host's ed25519 host key under its name and address
      ssh_config             for ``ssh -F``: Host entries with the key and known_hosts
      secrets.env            generated BMC credentials (only when not taken from the env)
      hosts/<name>/          sshd_config, ssh_host_ed25519_key, sshd.log, holder.json,
                             upper/<dir>, work/<dir> for the /etc /var /opt /usr /root overlays
      bmc/                   emulator.conf, htpasswd, state/ (emulator's sqlite), emulator.log
      vms/<name>/            domain.xml, disk.qcow2 (blank, sparse), console.log (serial)
      libvirt/               libvirtd.pid, virtlogd.pid and logs (only when the lab started them)
      bmc-vm/                the libvirt-driver emulator's config, tmp/, emulator.log
      racks/<name>/          dhcrelay.log of a routed rack's router namespace
      fabric/                ibsim.net, ibsim.log, opensm.conf (+ its files),
                             sm<i>/ per subnet: opensm.log, opensm.out, tmp/, cache/
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import LabError

STATE_VERSION = 1
MARKER = ".gpuctl-lab"


@dataclass(frozen=True)
class LabPaths:
    """Where a lab keeps its files; pure path arithmetic, no I/O."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def admin_key(self) -> Path:
        return self.root / "admin_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.env"

    @property
    def bmc_dir(self) -> Path:
        return self.root / "bmc"

    @property
    def fabric_dir(self) -> Path:
        return self.root / "fabric"

    def host_dir(self, host: str) -> Path:
        return self.root / "hosts" / host

    def vm_dir(self, vm: str) -> Path:
        return self.root / "vms" / vm

    @property
    def libvirt_dir(self) -> Path:
        return self.root / "libvirt"

    @property
    def vm_bmc_dir(self) -> Path:
        return self.root / "bmc-vm"

    def rack_dir(self, rack: str) -> Path:
        return self.root / "racks" / rack


@dataclass(frozen=True)
class ProcRecord:
    """A process the lab started: ``pid`` plus its start time, so a reused pid is never
    mistaken for it. Started with ``setsid``, so its process group id equals ``pid``."""

    label: str
    pid: int
    start_time: int
    argv: tuple[str, ...]


@dataclass
class HostRecord:
    name: str
    address: str
    netns: str
    veth: str
    mac: str
    bmc_system_id: str
    hca_ids: tuple[str, ...]
    catalog_type: str
    sshd: ProcRecord | None = None


@dataclass
class VmRecord:
    """A libvirt domain the lab defined (named ``domain``, UUID ``uuid``)."""

    name: str
    address: str  # planned in-band address with prefix (the image configures it)
    mac: str
    rack: str  # "" = first rack, else a RackRecord's name
    domain: str
    uuid: str
    bridge: str
    disk: str
    console: str
    defined: bool = False  # set (and saved) before ``virsh define``


@dataclass
class RackRecord:
    """A routed rack: its bridge, the router namespace and the DHCP relay in it."""

    name: str
    bridge: str
    router_netns: str
    uplink_veth: str  # bridge side on the first bridge; "up0" inside the router
    rack_veth: str  # bridge side on this rack's bridge; "rk0" inside the router
    gateway: str
    uplink: str
    relay_to: str
    relay_log: str
    relay: ProcRecord | None = None


@dataclass
class LibvirtRecord:
    """libvirtd/virtlogd, when this lab started them (None: they were already running)."""

    virtlogd: ProcRecord | None = None
    libvirtd: ProcRecord | None = None


@dataclass
class BmcRecord:
    url: str
    port: int
    credentials: str  # "env" (GPUCTL_BMC_USER/PASSWORD at up time) or "file" (secrets.env)
    proc: ProcRecord | None = None


@dataclass
class SmRecord:
    """The OpenSM of one subnet of the net file."""

    sm_node: str  # SIM_HOST of this OpenSM
    probe_node: str  # a CA of the subnet, for sminfo
    log: str  # opensm.log (opensm.out, its stdout/stderr, next to it)
    proc: ProcRecord | None = None


@dataclass
class FabricRecord:
    server: str  # IBSIM_SERVER_NAME for clients (the bridge address)
    port: int  # IBSIM_SERVER_PORT; ibsim also uses the next 10 UDP ports
    ibsim: ProcRecord | None = None
    sms: list[SmRecord] = field(default_factory=list)


@dataclass
class LabState:
    """What one lab is made of; ``complete`` once ``up`` has finished."""

    site: str
    lab_dir: str
    spec_digest: str
    bridge: str
    gateway: str
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    bmc: BmcRecord | None = None
    fabric: FabricRecord | None = None
    vms: dict[str, VmRecord] = field(default_factory=dict)
    racks: dict[str, RackRecord] = field(default_factory=dict)
    libvirt: LibvirtRecord | None = None
    vm_bmc: BmcRecord | None = None  # sushy-emulator, libvirt driver (when there are VMs)
    complete: bool = False
    version: int = STATE_VERSION

    @property
    def paths(self) -> LabPaths:
        return LabPaths(Path(self.lab_dir))

    def processes(self) -> list[ProcRecord]:
        """Every recorded process, hosts first (stopped in this order)."""
        procs = [h.sshd for h in self.hosts.values() if h.sshd is not None]
        if self.fabric is not None:
            procs += [sm.proc for sm in self.fabric.sms if sm.proc is not None]
            procs += [self.fabric.ibsim] if self.fabric.ibsim is not None else []
        procs += [r.relay for r in self.racks.values() if r.relay is not None]
        for emulator in (self.bmc, self.vm_bmc):
            if emulator is not None and emulator.proc is not None:
                procs.append(emulator.proc)
        return procs

    def daemons(self) -> list[ProcRecord]:
        """libvirtd then virtlogd, the ones this lab started (stopped after the domains)."""
        if self.libvirt is None:
            return []
        return [p for p in (self.libvirt.libvirtd, self.libvirt.virtlogd) if p is not None]


def _proc(data: dict[str, Any] | None) -> ProcRecord | None:
    if data is None:
        return None
    return ProcRecord(label=str(data["label"]), pid=int(data["pid"]),
                      start_time=int(data["start_time"]), argv=tuple(data["argv"]))


def state_from_dict(data: dict[str, Any]) -> LabState:
    hosts = {
        name: HostRecord(
            name=h["name"], address=h["address"], netns=h["netns"], veth=h["veth"],
            mac=h["mac"], bmc_system_id=h["bmc_system_id"], hca_ids=tuple(h["hca_ids"]),
            catalog_type=h["catalog_type"], sshd=_proc(h.get("sshd")),
        )
        for name, h in data.get("hosts", {}).items()
    }
    bmc = data.get("bmc")
    vm_bmc = data.get("vm_bmc")
    fabric = data.get("fabric")
    libvirt = data.get("libvirt")
    return LabState(
        site=data["site"], lab_dir=data["lab_dir"], spec_digest=data["spec_digest"],
        bridge=data["bridge"], gateway=data["gateway"], hosts=hosts,
        bmc=None if bmc is None else BmcRecord(
            url=bmc["url"], port=int(bmc["port"]), credentials=bmc["credentials"],
            proc=_proc(bmc.get("proc"))),
        fabric=None if fabric is None else FabricRecord(
            server=fabric["server"], port=int(fabric["port"]), ibsim=_proc(fabric.get("ibsim")),
            sms=[SmRecord(sm_node=sm["sm_node"], probe_node=sm["probe_node"], log=sm["log"],
                          proc=_proc(sm.get("proc"))) for sm in fabric.get("sms", [])]),
        vms={name: VmRecord(**v) for name, v in data.get("vms", {}).items()},
        racks={name: RackRecord(**{**r, "relay": _proc(r.get("relay"))})
               for name, r in data.get("racks", {}).items()},
        libvirt=None if libvirt is None else LibvirtRecord(
            virtlogd=_proc(libvirt.get("virtlogd")), libvirtd=_proc(libvirt.get("libvirtd"))),
        vm_bmc=None if vm_bmc is None else BmcRecord(
            url=vm_bmc["url"], port=int(vm_bmc["port"]), credentials=vm_bmc["credentials"],
            proc=_proc(vm_bmc.get("proc"))),
        complete=bool(data.get("complete", False)), version=int(data.get("version", 0)),
    )


def save_state(state: LabState) -> None:
    """Write ``state.json`` atomically (temp file + rename), mode 0600."""
    path = state.paths.state
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def load_state(lab_dir: Path) -> LabState | None:
    """The recorded state, or ``None`` when there is none (no lab, or already down)."""
    path = LabPaths(lab_dir).state
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabError(f"lab state {path}: cannot read ({exc.strerror})") from exc
    try:
        data = json.loads(text)
        if int(data.get("version", 0)) != STATE_VERSION:
            raise LabError(f"lab state {path}: version {data.get('version')!r} is not "
                           f"{STATE_VERSION}; remove the lab dir by hand")
        return state_from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"lab state {path}: unreadable ({exc!r})") from exc
