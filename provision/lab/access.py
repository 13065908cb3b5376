"""Reaching into a running lab: its access file, BMC endpoint, InfiniBand tool environment,
commands in hosts.

:func:`access_spec` is what ``gpuctl lab up`` writes to ``<lab dir>/access.yaml``: how
provision and burn-in reach the lab's hosts, like any other site's access file. The rest read
the lab's recorded state only; they start nothing.
"""

from __future__ import annotations

import ipaddress
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from provision.errors import LabError
from provision.execute.access import (
    FILE_NAME,
    AccessFile,
    BmcSpec,
    BootServicesSpec,
    HostSpec,
    SshSpec,
    TimeoutSpec,
    dump,
)
from provision.execute.rundir import guard
from provision.lab import bmc
from provision.lab.fabric import client_env
from provision.lab.hostfs import UMAD2SIM
from provision.lab.proc import alive
from provision.lab.state import HostRecord, LabPaths, LabState, load_state

IB_VARS = ("LD_PRELOAD", "IBSIM_SERVER_NAME", "IBSIM_SERVER_PORT", "SIM_HOST")
HOME_BASE = "/var/lib/gpuctl-home"  # lab hosts share the machine's /home; /var is private
ANSIBLE_VARS = {
    # Lab hosts are namespaces of one machine: write every file, apply nothing that would
    # change the machine itself (sysctls, grub, netplan, services).
    "rdma_tuning_apply_runtime": False, "chrony_manage_service": False,
    "netplan_apply": False, "apt_repos_update_cache": False,
    "admin_users_home_base": HOME_BASE, "system_identity_set_running": False,
}
IMAGE_NOTE = "lab: nothing was reinstalled; the host stayed up"
BOOT_SERVICES_VARS = {
    # the provisioning host is a namespace host: no init system (the daemons are started
    # with pid files) and no apt (the machine has the packages installed)
    "boot_services_service_manager": "none", "boot_services_install_packages": False,
}


def access_spec(state: LabState) -> AccessFile:
    """How a complete lab's hosts are reached: its addresses, admin key and known_hosts, its
    Redfish emulator, BMC credentials file, the InfiniBand simulator's client environment
    and the Ansible variables that keep the phases from changing this machine."""
    if state.bmc is None or state.fabric is None:
        raise LabError(f"lab site {state.site}: no BMC emulator or fabric recorded")
    paths = state.paths
    hosts = {h.name: HostSpec(ssh=SshSpec(address=str(ipaddress.IPv4Interface(h.address).ip)),
                              bmc=BmcSpec(url=state.bmc.url, system=h.bmc_system_id))
             for h in state.hosts.values()}
    if state.vms:
        if state.vm_bmc is None:
            raise LabError(f"lab site {state.site}: VMs but no VM BMC emulator recorded")
        # a VM is reached at its planned address once its image runs (the lab starts no sshd)
        hosts.update({v.name: HostSpec(ssh=SshSpec(address=str(ipaddress.IPv4Interface(
            v.address).ip)), bmc=BmcSpec(url=state.vm_bmc.url, system=v.uuid))
            for v in state.vms.values()})
    vm_note = (", VM nodes libvirt QEMU (TCG) domains with blank disks that network-boot, "
               "their BMCs sushy-emulator's libvirt driver") if state.vms else ""
    return AccessFile(
        description=(f"lab {state.site} at {paths.root}: hosts are network namespaces of "
                     f"this machine, BMCs a Redfish emulator{vm_note} (gpuctl lab up wrote "
                     "this file)"),
        exclusive=True,
        ssh=SshSpec(user="root", key=paths.admin_key.name, known_hosts=paths.known_hosts.name),
        hosts=dict(sorted(hosts.items())),
        credential_files=[paths.secrets.name] if state.bmc.credentials == "file" else [],
        admin_keys=[paths.admin_key.name + ".pub"],
        ansible_vars=ANSIBLE_VARS,
        # a TCG VM takes ~13 s to PXE and ~110 s to boot Debian: imaging is bounded longer
        timeouts=TimeoutSpec(boot_s=900.0 if state.vms else 30.0, boot_interval_s=1.0),
        infiniband_env={"LD_PRELOAD": UMAD2SIM, "IBSIM_SERVER_NAME": state.fabric.server,
                        "IBSIM_SERVER_PORT": str(state.fabric.port),
                        "SIM_HOST": "{node} {hca}"},
        network_boot=bool(state.vms), image_note="" if state.vms else IMAGE_NOTE,
        # VMs network-boot from the boot services the image phase deploys to the namespace
        # host at the plan's services address (reached there, like any lab host)
        boot_services=BootServicesSpec(vars=BOOT_SERVICES_VARS) if state.vms
        else BootServicesSpec())


def access_path(paths: LabPaths) -> Path:
    return paths.root / FILE_NAME


def write_access(state: LabState) -> Path:
    """Write ``<lab dir>/access.yaml`` (see :func:`access_spec`); return its path."""
    path = access_path(state.paths)
    path.write_text(dump(access_spec(state)))
    return path


def running_state(lab_dir: str | Path) -> LabState:
    """The state of a lab that finished ``up``, or a LabError saying it is not up."""
    root = Path(lab_dir)
    state = load_state(root)
    if state is None:
        raise LabError(f"lab dir {root}: no lab is up here (no state.json)")
    if not state.complete:
        raise LabError(f"lab site {state.site}: the lab in {root} is not completely up; "
                       "run `gpuctl lab up` again or `gpuctl lab down`")
    return state


def bmc_endpoint(lab_dir: str | Path) -> tuple[str, str, str]:
    """``(base URL, user, password)`` of the lab's Redfish emulator."""
    state = running_state(lab_dir)
    if state.bmc is None:
        raise LabError(f"lab site {state.site}: no BMC emulator recorded")
    creds = bmc.credentials_for_use(LabPaths(Path(lab_dir)), state.bmc.credentials)
    return state.bmc.url, creds.user, creds.password


def host_of_hca(state: LabState, hca_id: str) -> HostRecord:
    for host in state.hosts.values():
        if hca_id in host.hca_ids:
            return host
    known = sorted(h for host in state.hosts.values() for h in host.hca_ids)
    raise LabError(f"lab site {state.site}: no host has HCA {hca_id!r} "
                   f"(known: {', '.join(repr(k) for k in known[:6])}{' ...' if len(known) > 6 else ''})")


def ib_env(hca_id: str, lab_dir: str | Path) -> dict[str, str]:
    """The variables that make a libibumad tool (ibstat, ibnetdiscover, sminfo, ...) talk to
    the lab's ibsim as HCA ``hca_id``: LD_PRELOAD, IBSIM_SERVER_NAME/PORT and SIM_HOST.
    Merge them into the environment of a command run inside the HCA's host namespace."""
    state = running_state(lab_dir)
    host_of_hca(state, hca_id)
    assert state.fabric is not None  # a complete lab has a fabric
    env = client_env(state.fabric.server, state.fabric.port, hca_id, base={})
    return {k: env[k] for k in IB_VARS}


def host_exec(lab_dir: str | Path, host: str, argv: Sequence[str], *,
              env: Mapping[str, str] | None = None, timeout: float = 30.0
              ) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside lab host ``host`` (its network, mount and UTS namespaces), as if
    on that machine; returns the completed process (output as text), any exit status."""
    state = running_state(lab_dir)
    record = state.hosts.get(host)
    if record is None:
        raise LabError(f"lab site {state.site}: no host {host!r} "
                       f"(hosts: {', '.join(sorted(state.hosts))})")
    if record.sshd is None or not alive(record.sshd):
        raise LabError(f"lab host {host}: not running (its sshd is gone); "
                       "run `gpuctl lab up` again")
    # under the run's child guard (when a run holds a directory); ``env`` is set by env(1)
    # for the command alone, not for the guard (an LD_PRELOAD is the command's)
    command = guard(["env", *(f"{k}={v}" for k, v in (env or {}).items()), "nsenter", "-t",
                     str(record.sshd.pid), "-n", "-m", "-u", "--", *argv])
    try:
        with tempfile.TemporaryDirectory(prefix="gpuctl-lab-") as scratch:  # umad2sim's sys-*
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False, cwd=scratch)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"lab host {host}: {argv[0]} did not finish within {timeout:g}s") from exc


def run_ib_tool(lab_dir: str | Path, hca_id: str, argv: Sequence[str], *,
                timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run an InfiniBand tool inside the host that owns ``hca_id``, attached as that HCA."""
    state = running_state(lab_dir)
    host = host_of_hca(state, hca_id)
    return host_exec(lab_dir, host.name, argv, env=ib_env(hca_id, lab_dir), timeout=timeout)
