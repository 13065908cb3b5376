"""Which hosts a provision run selects, and the Ansible inventory it runs against (pure).

The targets (how each host is reached) come from :mod:`provision.execute.access`;
:func:`select` applies ``--limit``; :func:`inventory_text` renders the inventory the phase
playbooks run against (plan data as role-prefixed variables; ``gpuctl_nodes`` holds every
host, one ``rack_<rack>`` child per rack, and the groups of :mod:`provision.plan.stacks` the
nodes each phase applies to, then the access file's ``ansible_vars``).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

from provision.errors import UsageError
from provision.execute.access import HostTarget, Targets
from provision.execute.ssh import SshTarget
from provision.plan import stacks
from provision.plan.build import Plan

PYTHON = "/usr/bin/python3"  # never interpreter discovery: it finds pyenv shims


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
    v.update(t.access.ansible_vars)  # the access file's overrides (a lab's: touch nothing)
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
