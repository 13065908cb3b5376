"""Plan -> Ansible inventory (YAML) and group_vars.

Groups: ``hall_<hall>`` > ``row_<hall>_<row>`` > ``rack_<rack>`` (every node and switch in
its rack), ``su_<NN>`` (a rail-optimized scalable unit: its nodes and leaves) or
``block_<leaf>`` (other fat trees: the nodes whose HCAs are mostly on that leaf), ``role_<role>``
(gpu, storage, mgmt, head, switch), each node group under its own name, ``switch_<fabric>``,
``rail_<r>`` (leaves of one rail), ``plane_<p>`` (switches of one plane) and the nodes that
get each software stack (``gpuctl_gpu_nodes``, ``gpuctl_fabric_nodes``,
``gpuctl_kubernetes_nodes``: :mod:`provision.plan.stacks`, the phase playbooks' ``hosts:``).
Group names use ``_`` for ``-``, as Ansible wants.

Host variables are written once, in the host's rack group; other groups list the host bare.
They are JSON flow mappings (valid YAML), built in Python so a 16k-GPU site stays fast:
``ansible_host`` (in-band address of the boot interface; switch management address),
``gpuctl_bmc_address``, rack position, fabric block, the HCA-to-rail map
(``gpuctl_hca_rails``: device -> rail) and the IPoIB address of each rail's interface
(``gpuctl_ipoib``: ``ib<rail>`` -> address/prefix). Leaf ports are in cabling.csv; keeping
host variables few keeps ``ansible-inventory`` usable on a 2,048-node site. Versions are group variables (``group_vars/all.yml`` and one file per node
group); BMC credentials are environment lookups, never values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii
from typing import Any

from provision.errors import PlanError
from provision.plan import stacks
from provision.plan.addressing import Address
from provision.plan.build import Plan
from provision.plan.versions import as_vars, matrix
from provision.render.templating import render
from provision.render.topo import Topology, services_address, topology

_VALUE = json.JSONEncoder(separators=(", ", ": ")).encode
"""A host variable's value as one-line JSON (which YAML reads): one encoder for the tens of
thousands of values of a large site, not one per value."""

_STR = encode_basestring_ascii
"""What :data:`_VALUE` gives for a string (and ``str(v)`` for an int, not a bool), without
the encoder's Python frames: two thirds of the 344k host variables at 131k GPUs."""

_BAD = re.compile(r"[^A-Za-z0-9_]")
_SU = re.compile(r"^su(\d+)$")


def group_name(*parts: str) -> str:
    return _BAD.sub("_", "_".join(parts))


def _hostvars(plan: Plan, topo: Topology) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    racks = {r.name: r for r in plan.racks}
    su_of: dict[str, int | None] = {}
    for n in plan.nodes:
        inband, bmc, storage, ipoib = _node_addresses(plan.addresses_of(n.name))
        rack = racks[n.rack]
        v: dict[str, Any] = {}
        if inband is not None:
            v["ansible_host"] = inband.address
        v["gpuctl_node_group"] = n.group
        v["gpuctl_role"] = n.role
        v["gpuctl_hall"] = rack.hall
        v["gpuctl_row"] = rack.row
        v["gpuctl_rack"] = n.rack
        v["gpuctl_rack_u"] = n.u
        v["gpuctl_rack_slot"] = n.slot
        if bmc is not None:
            v["gpuctl_bmc_address"] = bmc
        if inband is not None:
            v["gpuctl_inband"] = {"interface": inband.interface,
                                  "address": f"{inband.address}/{inband.prefix}",
                                  "gateway": inband.gateway}
        if storage:
            v["gpuctl_storage"] = storage
        block = topo.block.get(n.name)
        if block is not None:
            v["gpuctl_block"] = block
            if block not in su_of:
                m = _SU.match(block)
                su_of[block] = int(m.group(1)) if m else None
            if (su := su_of[block]) is not None:
                v["gpuctl_su"] = su
            v["gpuctl_spine"] = topo.spine[n.name]
            v["gpuctl_hca_rails"] = {dev: rail for rail, dev, _, _ in topo.rails[n.name]}
            if ipoib:
                v["gpuctl_ipoib"] = ipoib
        out[n.name] = v
    for sw in plan.switches:
        mgmt = [a for a in plan.addresses_of(sw.name) if a.pool == "switch_mgmt"]
        sv: dict[str, Any] = {}
        if mgmt:
            sv["ansible_host"] = mgmt[0].address
        sv.update({"gpuctl_role": "switch", "gpuctl_fabric": sw.fabric,
                   "gpuctl_switch_model": sw.model, "gpuctl_tier": sw.tier,
                   "gpuctl_rack": sw.rack, "gpuctl_rack_u": sw.u})
        if sw.plane is not None:
            sv["gpuctl_plane"] = sw.plane
        if sw.su is not None:
            sv["gpuctl_su"] = sw.su
        out[sw.name] = sv
    return out


def _node_addresses(addrs: Iterable[Address]) -> tuple[
        Address | None, str | None, list[dict[str, str]], dict[str, str]]:
    """A node's first in-band address, its (last) BMC address, its storage addresses and
    its IPoIB address by interface, from one pass over its addresses."""
    inband: Address | None = None
    bmc: str | None = None
    storage: list[dict[str, str]] = []
    ipoib: dict[str, str] = {}
    for a in addrs:
        pool = a.pool
        if pool == "inband":
            if inband is None:
                inband = a
        elif pool == "oob":
            bmc = a.address
        elif pool == "storage":
            storage.append({"interface": a.interface, "address": f"{a.address}/{a.prefix}"})
        elif pool == "ipoib":
            ipoib[a.interface] = f"{a.address}/{a.prefix}"
    return inband, bmc, storage, ipoib


def _block_group(block: str) -> str:
    """``su_01`` for a scalable unit (the same group as its leaves), else ``block_<leaf>``."""
    m = _SU.match(block)
    return group_name("su", m.group(1)) if m else group_name("block", block)


def _groups(plan: Plan, topo: Topology) -> dict[str, list[str]]:
    """Flat groups (name -> hosts in plan order), besides the hall/row/rack tree."""
    groups: dict[str, list[str]] = {}

    def add(group: str, host: str) -> None:
        groups.setdefault(group, []).append(host)

    for g in plan.site.node_groups:
        groups[group_name(g.name)] = []
    for n in plan.nodes:
        add(group_name(n.group), n.name)
        add(group_name("role", n.role), n.name)
        if n.name in topo.block:
            add(_block_group(topo.block[n.name]), n.name)
    groups.update(stacks.groups(plan))
    leaf_rails: dict[str, set[int]] = {}
    compute = plan.fabrics.get("compute")
    if compute is not None:
        for lk in compute.links:
            if lk.kind == "node-leaf" and lk.plane is None and lk.rail is not None:
                leaf_rails.setdefault(lk.b, set()).add(lk.rail)
    for sw in plan.switches:
        add("role_switch", sw.name)
        add(group_name("switch", sw.fabric), sw.name)
        if sw.plane is not None:
            add(group_name("plane", str(sw.plane)), sw.name)
        if sw.su is not None:
            add(group_name("su", f"{sw.su:02d}"), sw.name)
        rails = leaf_rails.get(sw.name, set())
        if len(rails) == 1 and compute is not None and compute.topology == "rail-optimized":
            add(group_name("rail", str(next(iter(rails)))), sw.name)
    return groups


def inventory(plan: Plan, topo: Topology | None = None) -> str:
    """``ansible/inventory.yml`` (``topo``: the plan's topology, when the caller has it)."""
    topo = topo if topo is not None else topology(plan)
    tree: dict[str, dict[str, dict[str, list[str]]]] = {}
    racks = {r.name: r for r in plan.racks}
    by_rack: dict[str, list[str]] = {}
    for n in plan.nodes:
        by_rack.setdefault(n.rack, []).append(n.name)
    for sw in plan.switches:
        by_rack.setdefault(sw.rack, []).append(sw.name)
    for r in plan.racks:
        if r.name in by_rack:
            tree.setdefault(r.hall, {}).setdefault(r.row, {})[r.name] = by_rack[r.name]
    groups = _groups(plan, topo)
    structural = {group_name("hall", h) for h in tree} | {
        group_name("row", h, row) for h, rows in tree.items() for row in rows} | {
        group_name("rack", r) for r in by_rack}
    clash = sorted(structural & set(groups))
    if clash:
        raise PlanError(f"Ansible group name {clash[0]!r} is used twice (a node group name "
                        "clashes with a hall/row/rack group); rename the node group")
    del racks
    out = [f"# Ansible inventory of site {plan.site.site.name} (generated by gpuctl plan; "
           "edit the site, not this file).",
           f"# {len(plan.nodes)} nodes, {len(plan.switches)} switches. Variables: "
           "group_vars/ and host_vars/ next to this file.",
           "all:", "  children:"]
    for hall, rows in tree.items():
        out += [f"    {group_name('hall', hall)}:", "      children:"]
        for row, rack_hosts in rows.items():
            out += [f"        {group_name('row', hall, row)}:", "          children:"]
            for rack, hosts in rack_hosts.items():
                out += [f"            {group_name('rack', rack)}:", "              hosts:"]
                out += [f"                {h}:" for h in hosts]
    for name in sorted(groups):
        hosts = groups[name]
        out.append(f"    {name}:" if hosts else f"    {name}: {{}}")
        if hosts:
            out.append("      hosts:")
            out += [f"        {h}:" for h in hosts]
    return "\n".join(out) + "\n"


def group_vars(plan: Plan) -> dict[str, str]:
    """``ansible/group_vars/all.yml`` and one file per node group."""
    site = plan.site
    sw = site.software
    m = matrix()
    branch = m.branches.get(sw.driver_branch, {"kind": "unknown", "eol": "", "max_cuda": "",
                                               "package_suffix": True})
    pkey = site.fabrics.compute.ipoib_pkey if site.fabrics.compute else "0x7fff"
    files = {"ansible/group_vars/all.yml": render(
        "ansible/all.yml.j2", site=site.site.name, domain=site.site.domain,
        services=services_address(plan), sw=sw, branch=branch,
        nccl_package=f"{sw.nccl}-1+cuda{sw.cuda}",
        fabric_manager=sw.fabric_manager or sw.driver_version,
        pod_cidr=site.addressing.pod_cidr, service_cidr=site.addressing.service_cidr,
        pkey=pkey, matrix=as_vars(m))}
    for g in site.node_groups:
        ntype = plan.catalog.nodes[g.type]
        gen = m.generations.get(ntype.gpu_generation, {}) if ntype.gpu_generation else {}
        modules = sw.kernel_modules if sw.kernel_modules != "auto" else gen.get(
            "default_modules", "open")
        files[f"ansible/group_vars/{group_name(g.name)}.yml"] = render(
            "ansible/node_group.yml.j2", site=site.site.name, group=g, ntype=ntype,
            kernel_modules=modules if ntype.gpus else None,
            fabric_kind=gen.get("fabric") if ntype.nvswitch else None,
            hcas=[h.device for h in ntype.compute_hcas])
    return files


def planned_hostvars(plan: Plan, topo: Topology | None = None) -> dict[str, dict[str, Any]]:
    """Every node's and switch's Ansible variables, by host name."""
    return _hostvars(plan, topo if topo is not None else topology(plan))


def host_vars(plan: Plan, topo: Topology | None = None) -> dict[str, str]:
    """``ansible/host_vars/<host>.yml``: one small file per host.

    Ansible reads a host's file only when a play (or ``--list``) needs that host, so a
    playbook limited to one rack of a 16,384-node site does not parse every host's
    variables first; inline variables in inventory.yml cost minutes at that scale.
    """
    files = {}
    for host, hv in planned_hostvars(plan, topo).items():
        body = "".join([f"{k}: {_STR(v)}\n" if type(v) is str else f"{k}: {v}\n"
                        if type(v) is int else f"{k}: {_VALUE(v)}\n" for k, v in hv.items()])
        files[f"ansible/host_vars/{host}.yml"] = f"---\n# {host} (generated by gpuctl plan)\n{body}"
    return files


def ansible_tree(plan: Plan, topo: Topology | None = None) -> dict[str, str]:
    topo = topo if topo is not None else topology(plan)
    return {"ansible/inventory.yml": inventory(plan, topo), **group_vars(plan),
            **host_vars(plan, topo)}
