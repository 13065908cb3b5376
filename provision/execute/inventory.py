"""Which hosts a provision run reaches, how, and the Ansible inventory it runs against.

:func:`targets` joins the plan (names, racks, addresses) with how to reach each host: on a
real site, the in-band address, the BMC at its out-of-band address and the user's
known_hosts; in the lab (``gpuctl lab up``), the lab's recorded addresses, its Redfish
emulator, admin key and known_hosts. :func:`inventory_text` renders the inventory the phase
playbooks run against (plan data as role-prefixed variables; ``gpuctl_nodes`` holds every
host, one ``rack_<rack>`` child per rack, and the groups of :mod:`provision.plan.stacks` the
nodes each phase applies to). Pure except ``lab_context``.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provision.errors import ExecutionError, UsageError
from provision.execute.redfish import BmcTarget
from provision.execute.ssh import SshTarget
from provision.plan import stacks
from provision.plan.build import Plan

PYTHON = "/usr/bin/python3"  # never interpreter discovery: it finds pyenv shims
LAB_HOME_BASE = "/var/lib/gpuctl-home"  # lab hosts share the machine's /home; /var is private


@dataclass(frozen=True)
class HostTarget:
    name: str
    rack: str
    group: str
    ssh: SshTarget
    bmc: BmcTarget


@dataclass(frozen=True)
class Targets:
    site: str
    hosts: tuple[HostTarget, ...]
    lab_dir: Path | None = None
    credential_files: tuple[Path, ...] = ()
    admin_keys: tuple[str, ...] = ()

    @property
    def lab(self) -> bool:
        return self.lab_dir is not None

    def by_name(self) -> dict[str, HostTarget]:
        return {h.name: h for h in self.hosts}


@dataclass(frozen=True)
class LabContext:
    """What ``targets`` needs from a running lab (read by :func:`lab_context`)."""

    lab_dir: Path
    addresses: Mapping[str, str]  # host -> address without prefix
    system_ids: Mapping[str, str]  # host -> Redfish system UUID
    bmc_url: str
    admin_key: Path
    known_hosts: Path
    secrets: Path | None
    admin_public_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def lab_context(lab_dir: Path) -> LabContext:
    from provision.lab import running_state
    from provision.lab.keys import public_key

    state = running_state(lab_dir)
    if state.bmc is None:
        raise ExecutionError(f"lab {lab_dir}: no BMC emulator recorded")
    paths = state.paths
    return LabContext(
        lab_dir=lab_dir,
        addresses={h.name: str(ipaddress.IPv4Interface(h.address).ip)
                   for h in state.hosts.values()},
        system_ids={h.name: h.bmc_system_id for h in state.hosts.values()},
        bmc_url=state.bmc.url, admin_key=paths.admin_key, known_hosts=paths.known_hosts,
        secrets=paths.secrets if paths.secrets.exists() else None,
        admin_public_key=public_key(paths.admin_key))


def targets(plan: Plan, *, lab: LabContext | None = None, verify_tls: bool = True,
            credential_files: Sequence[Path] = (), admin_keys: Sequence[str] = (),
            known_hosts: Path | None = None) -> Targets:
    """How to reach every planned host: the lab's when ``lab``, else the plan's addresses,
    with host keys checked against ``known_hosts`` (``gpuctl image seed`` writes the keys it
    pre-generated there) or the user's own when it is None."""
    hosts: list[HostTarget] = []
    for node in plan.nodes:
        addrs = {a.pool: a.address for a in plan.addresses_of(node.name)}
        if lab is not None:
            if node.name not in lab.addresses:
                raise ExecutionError(f"host {node.name}: not in the lab at {lab.lab_dir} "
                                     f"(lab hosts: {', '.join(sorted(lab.addresses))})")
            ssh = SshTarget(node.name, lab.addresses[node.name], key_file=lab.admin_key,
                            known_hosts=lab.known_hosts)
            bmc = BmcTarget(node.name, lab.bmc_url, lab.system_ids[node.name], verify_tls)
        else:
            if "inband" not in addrs or "oob" not in addrs:
                raise ExecutionError(f"host {node.name}: the plan has no in-band or BMC "
                                     "address for it")
            ssh = SshTarget(node.name, addrs["inband"], known_hosts=known_hosts)
            bmc = BmcTarget(node.name, f"https://{addrs['oob']}", "", verify_tls)
        hosts.append(HostTarget(node.name, node.rack, node.group, ssh, bmc))
    files = list(credential_files)
    keys = list(admin_keys)
    if lab is not None:
        if lab.secrets is not None:
            files.append(lab.secrets)
        if lab.admin_public_key:
            keys.append(lab.admin_public_key)
    return Targets(plan.site.site.name, tuple(hosts), None if lab is None else lab.lab_dir,
                   tuple(files), tuple(keys))


def select(t: Targets, limit: str | None) -> list[str]:
    """Hosts chosen by ``--limit``: ``rack=a01,a02``, ``group=gpu`` or host names, all in
    plan order. Unknown names are an error naming the allowed ones."""
    names = [h.name for h in t.hosts]
    if not limit:
        return names
    if "=" in limit:
        key, _, values = limit.partition("=")
        wanted = {v.strip() for v in values.split(",") if v.strip()}
        attr = {"rack": "rack", "group": "group"}.get(key.strip())
        if attr is None:
            raise UsageError(f"--limit {limit!r}: key {key!r} must be rack or group")
        known = {getattr(h, attr) for h in t.hosts}
        bad = sorted(wanted - known)
        if bad:
            raise UsageError(f"--limit {limit!r}: no {attr} {bad[0]!r} (known: "
                             f"{', '.join(sorted(known))})")
        return [h.name for h in t.hosts if getattr(h, attr) in wanted]
    wanted = {v.strip() for v in limit.split(",") if v.strip()}
    bad = sorted(wanted - set(names))
    if bad:
        raise UsageError(f"--limit: unknown host {bad[0]!r} (hosts: {', '.join(names[:8])}"
                         f"{' ...' if len(names) > 8 else ''})")
    return [n for n in names if n in wanted]


def _ssh_args(s: SshTarget) -> str:
    if s.known_hosts is None:
        return "-o StrictHostKeyChecking=yes"
    return shlex.join(["-o", f"UserKnownHostsFile={s.known_hosts}", "-o",
                       "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                       "-o", "IdentitiesOnly=yes"])


def _host_vars(plan: Plan, h: HostTarget) -> dict[str, Any]:
    v: dict[str, Any] = {"ansible_host": h.ssh.address, "gpuctl_rack": h.rack,
                         "gpuctl_node_group": h.group,
                         "ansible_ssh_common_args": _ssh_args(h.ssh)}
    if h.ssh.key_file is not None:
        v["ansible_ssh_private_key_file"] = str(h.ssh.key_file)
    ethernets: dict[str, Any] = {}  # IPoIB is the ipoib role's (fabric phase), not base's
    for a in plan.addresses_of(h.name):
        if a.pool == "inband":
            eth: dict[str, Any] = {"addresses": [f"{a.address}/{a.prefix}"]}
            if a.gateway:
                eth["routes"] = [{"to": "default", "via": a.gateway}]
            ethernets[a.interface] = eth
        elif a.pool == "storage":
            ethernets[a.interface] = {"addresses": [f"{a.address}/{a.prefix}"], "mtu": 9000}
    v["netplan_ethernets"] = ethernets
    return v


def _site_vars(plan: Plan, t: Targets) -> dict[str, Any]:
    sw = plan.site.software
    inband = [a for n in plan.nodes for a in plan.addresses_of(n.name) if a.pool == "inband"]
    gateways = sorted({a.gateway for a in inband if a.gateway})
    domain = plan.site.site.domain
    v: dict[str, Any] = {
        "ansible_user": "root",
        "ansible_python_interpreter": PYTHON,
        "system_identity_domain": domain,
        "system_identity_hosts": [{"name": a.device, "address": a.address}
                                  for a in inband],
        "chrony_servers": gateways[:1] or ["pool.ntp.org"],
        "admin_users_list": [{"name": "gpuadmin", "keys": list(t.admin_keys)}]
        if t.admin_keys else [],
        "apt_repos_os": sw.os,
    }
    if t.lab:
        # Lab hosts are namespaces of one machine: write every file, apply nothing that
        # would change the machine itself (sysctls, grub, netplan, services).
        v.update({"rdma_tuning_apply_runtime": False, "chrony_manage_service": False,
                  "netplan_apply": False, "apt_repos_update_cache": False,
                  "admin_users_home_base": LAB_HOME_BASE, "system_identity_set_running": False})
    return v


SECRET_VARS = ("gpuctl_bmc_username", "gpuctl_bmc_password")  # never in a run's inventory


def rendered_vars(plan: Plan) -> tuple[dict[str, Any], dict[str, dict[str, Any]],
                                       dict[str, dict[str, Any]]]:
    """The plan's Ansible variables as ``gpuctl plan`` renders them (provision.render):
    (all.yml, {node group: its group_vars}, {host: host vars}); BMC secrets left out."""
    from provision.render.ansible import group_vars, planned_hostvars

    files = group_vars(plan)
    allvars = yaml.safe_load(files.pop("ansible/group_vars/all.yml")) or {}
    for key in SECRET_VARS:
        allvars.pop(key, None)
    groups = {Path(path).stem: yaml.safe_load(text) or {} for path, text in files.items()}
    hostvars = {name: hv for name, hv in planned_hostvars(plan).items() if hv}
    return allvars, groups, hostvars


def inventory_data(plan: Plan, t: Targets) -> dict[str, Any]:
    allvars, groups, planned = rendered_vars(plan)
    racks: dict[str, dict[str, Any]] = {}
    for h in t.hosts:
        rack = racks.setdefault(f"rack_{h.rack}".replace("-", "_"), {"hosts": {}})
        hv = {k: v for k, v in planned.get(h.name, {}).items() if k != "ansible_host"}
        rack["hosts"][h.name] = {**groups.get(h.group, {}), **hv, **_host_vars(plan, h)}
    chosen = {h.name for h in t.hosts}
    children: dict[str, Any] = {"gpuctl_nodes": {"children": racks}}
    for group, members in stacks.groups(plan).items():
        children[group] = {"hosts": {h: {} for h in members if h in chosen}}
    return {"all": {"vars": {**allvars, **_site_vars(plan, t)}, "children": children}}


def inventory_text(plan: Plan, t: Targets) -> str:
    """The run's inventory as JSON (Ansible's YAML inventory plugin reads it as YAML; JSON
    parses several times faster, which a 2,000-host dry run notices)."""
    return json.dumps(inventory_data(plan, t), sort_keys=True, indent=1) + "\n"
