"""What a lab looks like right now, checked against its recorded state.

Per host: namespace present, sshd alive, and an SSH login as root that verifies the host key
against the lab's known_hosts (paramiko ``RejectPolicy``) and reads back the hostname. The BMC
emulator must answer with auth and list the systems (the libvirt-driver one the VM domains,
each in its libvirt state); routed racks need their bridge, router and relay; the SM state comes from OpenSM's log
and from ``sminfo`` through umad2sim.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import requests

from provision.errors import LabError
from provision.lab import bmc, libvirt, netns
from provision.lab.fabric import client_env, sm_state
from provision.lab.proc import alive, run
from provision.lab.state import HostRecord, LabPaths, LabState, load_state


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    netns: bool
    sshd_pid: int | None
    sshd_alive: bool
    ssh: bool  # logged in with the admin key, host key verified, hostname matched
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.netns and self.sshd_alive and self.ssh


@dataclass(frozen=True)
class BmcStatus:
    url: str | None
    alive: bool
    answering: bool
    systems: dict[str, str] = field(default_factory=dict)  # name -> PowerState
    detail: str = ""


@dataclass(frozen=True)
class SubnetStatus:
    sm_node: str  # where this subnet's OpenSM is attached
    opensm_alive: bool
    sm_state: str | None  # last state OpenSM entered, e.g. "MASTER"
    subnet_up: bool
    sminfo: str = ""  # sminfo's answer, asked from a CA of the subnet
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.opensm_alive and self.subnet_up and self.sm_state == "MASTER"


@dataclass(frozen=True)
class FabricStatus:
    server: str | None
    port: int | None
    ibsim_alive: bool
    subnets: list[SubnetStatus]

    @property
    def ok(self) -> bool:
        return self.ibsim_alive and bool(self.subnets) and all(s.ok for s in self.subnets)


@dataclass(frozen=True)
class VmStatus:
    name: str
    address: str  # planned (the image configures it)
    mac: str
    domain: str
    state: str  # libvirt's domain state ("running", "shut off", ...) or "missing"

    @property
    def ok(self) -> bool:
        return self.state != "missing"


@dataclass(frozen=True)
class RackStatus:
    name: str
    bridge_present: bool
    router_netns: bool
    relay_alive: bool

    @property
    def ok(self) -> bool:
        return self.bridge_present and self.router_netns and self.relay_alive


@dataclass(frozen=True)
class LabStatus:
    site: str
    lab_dir: str
    recorded: bool  # a state.json exists
    complete: bool  # ``up`` finished
    bridge: str | None
    bridge_present: bool
    hosts: list[HostStatus]
    bmc: BmcStatus | None
    fabric: FabricStatus | None
    vms: list[VmStatus] = field(default_factory=list)
    racks: list[RackStatus] = field(default_factory=list)
    vm_bmc: BmcStatus | None = None

    @property
    def ok(self) -> bool:
        return (self.complete and self.bridge_present and all(h.ok for h in self.hosts)
                and self.bmc is not None and self.bmc.answering
                and self.fabric is not None and self.fabric.ok
                and all(v.ok for v in self.vms) and all(r.ok for r in self.racks)
                and (not self.vms or (self.vm_bmc is not None and self.vm_bmc.answering)))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def check_ssh(host: HostRecord, paths: LabPaths, *, timeout: float = 5.0) -> tuple[bool, str]:
    """Log in as root with the admin key, host key checked against known_hosts."""
    addr = str(ipaddress.IPv4Interface(host.address).ip)
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(paths.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(addr, port=22, username="root", key_filename=str(paths.admin_key),
                       look_for_keys=False, allow_agent=False, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout)
        _, stdout, _ = client.exec_command("hostname", timeout=timeout)
        name = stdout.read().decode(errors="replace").strip()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        return False, f"ssh {addr}:22: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    if name != host.name:
        return False, f"ssh {addr}:22: hostname is {name!r}, expected {host.name!r}"
    return True, ""


def _host_status(host: HostRecord, paths: LabPaths) -> HostStatus:
    ns = netns.netns_exists(host.netns)
    sshd_alive = host.sshd is not None and alive(host.sshd)
    ssh_ok, detail = (False, "sshd not running")
    if sshd_alive:
        ssh_ok, detail = check_ssh(host, paths)
    return HostStatus(name=host.name, address=host.address, netns=ns,
                      sshd_pid=host.sshd.pid if host.sshd else None, sshd_alive=sshd_alive,
                      ssh=ssh_ok, detail=detail if not ns or sshd_alive else "namespace gone")


def _bmc_status(state: LabState, *, vms: bool = False) -> BmcStatus | None:
    record = state.vm_bmc if vms else state.bmc
    if record is None:
        return None
    proc_alive = record.proc is not None and alive(record.proc)
    try:
        creds = bmc.credentials_for_use(state.paths, record.credentials)
        # the libvirt driver asks libvirtd for each system: slower than the fake driver
        systems = bmc.list_systems(record.url, creds, timeout=30.0 if vms else 3.0)
    except (LabError, requests.RequestException, ValueError) as exc:
        return BmcStatus(url=record.url, alive=proc_alive, answering=False,
                         detail=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    # the libvirt driver names a system after its domain
    expected = {v.domain for v in state.vms.values()} if vms else set(state.hosts)
    missing = sorted(expected - set(systems))
    return BmcStatus(url=record.url, alive=proc_alive, answering=not missing,
                     systems=systems,
                     detail=f"systems missing: {', '.join(missing)}" if missing else "")


def _fabric_status(state: LabState) -> FabricStatus | None:
    fab = state.fabric
    if fab is None:
        return None
    ibsim_alive = fab.ibsim is not None and alive(fab.ibsim)
    subnets = []
    for sm in fab.sms:
        last_state, subnet_up = sm_state(Path(sm.log))
        sminfo, detail = "", ""
        if ibsim_alive:
            result = run(["sminfo"], what="lab fabric: sminfo", timeout=10, check=False,
                         env=client_env(fab.server, fab.port, sm.probe_node))
            sminfo = result.stdout.strip()
            if result.returncode != 0:
                detail = f"sminfo exited with status {result.returncode}: " + (
                    result.stderr.strip().splitlines() or ["no output"])[-1]
        subnets.append(SubnetStatus(
            sm_node=sm.sm_node, opensm_alive=sm.proc is not None and alive(sm.proc),
            sm_state=last_state, subnet_up=subnet_up, sminfo=sminfo, detail=detail))
    return FabricStatus(server=fab.server, port=fab.port, ibsim_alive=ibsim_alive,
                        subnets=subnets)


def lab_status(site: str, lab_dir: Path) -> LabStatus:
    """Inspect the lab recorded under ``lab_dir`` (nothing recorded: an empty status)."""
    state = load_state(lab_dir)
    if state is None:
        return LabStatus(site=site, lab_dir=str(lab_dir), recorded=False, complete=False,
                         bridge=None, bridge_present=False, hosts=[], bmc=None, fabric=None)
    paths = state.paths
    records = list(state.hosts.values())
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(records)))) as pool:
        hosts = list(pool.map(lambda h: _host_status(h, paths), records))
    return LabStatus(site=state.site, lab_dir=str(lab_dir), recorded=True,
                     complete=state.complete, bridge=state.bridge,
                     bridge_present=netns.link_exists(state.bridge), hosts=hosts,
                     bmc=_bmc_status(state), fabric=_fabric_status(state),
                     vms=[VmStatus(name=v.name, address=v.address, mac=v.mac, domain=v.domain,
                                   state=libvirt.domain_state(v.domain))
                          for v in state.vms.values()],
                     racks=[RackStatus(name=r.name, bridge_present=netns.link_exists(r.bridge),
                                       router_netns=netns.netns_exists(r.router_netns),
                                       relay_alive=r.relay is not None and alive(r.relay))
                            for r in state.racks.values()],
                     vm_bmc=_bmc_status(state, vms=True))
