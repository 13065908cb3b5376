"""A site's plan -> the :class:`~provision.lab.spec.LabSpec` that ``gpuctl lab up`` builds.

Everything comes from the plan, nothing is re-derived: host names and in-band addresses
(boot interface) from the plan's addresses, the gateway from the in-band subnet of the
site's (single) rack, HCA ids ``"<host> mlx5_N"`` from the compute fabric as the ibsim net
file names them, the net file and OpenSM files from the renderers. OpenSM files are rendered
with bare file names; the lab writes ``opensm_files`` next to ``opensm.conf`` and rewrites
those names to absolute paths (:func:`provision.lab.fabric.render_opensm_conf`). GUIDs are
the discovered ones when ``discovered_guids.json`` sits next to site.yaml, else synthetic.
BMC system ids are ``uuid5`` of site and host, stable across runs.

A site may name VM groups in ``lab.yaml`` next to site.yaml (``vm_groups: [gpu]``; the file
is the lab's, the site model knows nothing of it). Their nodes become libvirt domains with
blank disks whose NICs carry the MACs of the site's delivery manifest (``macs.json``, one per
VM node's boot interface: the lab honors it like a delivery crew). The first rack is the
in-band subnet of the plan's services address (its namespace hosts sit on the lab bridge);
each other subnet with VM nodes becomes a routed rack behind a router namespace whose uplink
is the first rack's network + 3 and which relays DHCP to the services address.
"""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

import yaml

from provision.errors import LabError
from provision.image.macs import load_macs
from provision.lab.hardware import hwsim_setup
from provision.lab.hostfs import HostSetup
from provision.lab.spec import LabHost, LabSpec, LabVm, RoutedRack
from provision.loader import load_discovered_guids
from provision.plan.build import Plan
from provision.plan.ibnames import hca_id
from provision.plan.load import load_and_plan
from provision.render.ibsim import ibsim_net
from provision.render.opensm import opensm_conf, opensm_files, resolve_guids
from provision.render.topo import services_address

LAB_FILE = "lab.yaml"

LAB_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "gpuctl-lab")


def bmc_system_id(site: str, host: str) -> str:
    return str(uuid.uuid5(LAB_NAMESPACE, f"{site}/{host}"))


def load_vm_groups(site_dir: Path, plan: Plan) -> tuple[str, ...]:
    """The ``vm_groups`` of ``SITE/lab.yaml`` (checked against the plan's groups); ()
    without the file."""
    path = site_dir / LAB_FILE
    if not path.exists():
        return ()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict) or set(data) - {"vm_groups"}:
        raise LabError(f"{path}: expected a mapping with the one key vm_groups")
    groups = data.get("vm_groups") or []
    known = {g.name for g in plan.site.node_groups}
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise LabError(f"{path}: vm_groups: expected a list of node group names")
    for g in groups:
        if g not in known:
            raise LabError(f"{path}: vm_groups: {g!r} is not a node group of the site "
                           f"(groups: {', '.join(sorted(known))})")
    return tuple(groups)


def lab_spec_from_plan(plan: Plan, guids: dict[str, str] | None = None, *,
                       vm_groups: tuple[str, ...] = (),
                       macs: dict[str, str] | None = None) -> LabSpec:
    """The LabSpec of ``plan`` (pure; :func:`lab_spec_for_site` loads the site)."""
    site = plan.site.site.name
    boot = {g.name: g.boot_interface for g in plan.site.node_groups}
    hosts: list[LabHost] = []
    vms: list[tuple[str, str, str]] = []  # (name, address/prefix, gateway/prefix)
    gateways: set[str] = set()
    hcas: dict[str, list[str]] = {}
    for lk in plan.node_fabric_links():
        hcas.setdefault(lk.a, []).append(hca_id(lk.a, lk.a_port))
    for n in plan.nodes:
        inband = [a for a in plan.addresses_of(n.name)
                  if a.pool == "inband" and a.interface == boot[n.group]]
        if not inband:
            raise LabError(f"lab site {site}: node {n.name} has no in-band address in the plan")
        a = inband[0]
        if n.group in vm_groups:
            vms.append((n.name, f"{a.address}/{a.prefix}", f"{a.gateway}/{a.prefix}"))
            continue
        gateways.add(f"{a.gateway}/{a.prefix}")
        hosts.append(LabHost(name=n.name, address=f"{a.address}/{a.prefix}",
                             bmc_system_id=bmc_system_id(site, n.name),
                             hca_ids=tuple(hcas.get(n.name, [])), catalog_type=n.type))
    if vms:
        return _vm_lab(plan, site, hosts, vms, gateways, guids, macs or {}, boot)
    if len(gateways) != 1:
        raise LabError(f"lab site {site}: the lab runs one rack (one in-band subnet); the plan "
                       f"has {len(gateways)}: {', '.join(sorted(gateways))}")
    if "compute" not in plan.fabrics:
        raise LabError(f"lab site {site}: no compute fabric to simulate")
    g = resolve_guids(plan, guids)
    return LabSpec(site=site, gateway=gateways.pop(), hosts=tuple(hosts),
                   ibsim_net=ibsim_net(plan, g), opensm_conf=opensm_conf(plan, g, file_dir=None),
                   opensm_files=opensm_files(plan, g))


def _vm_lab(plan: Plan, site: str, hosts: list[LabHost], vms: list[tuple[str, str, str]],
            gateways: set[str], guids: dict[str, str] | None, macs: dict[str, str],
            boot: dict[str, str]) -> LabSpec:
    """A lab with VM nodes: namespace hosts on the first rack, routed racks for the rest."""
    services = ipaddress.IPv4Address(services_address(plan))
    first = next((s for s in plan.subnets if s.pool == "inband"
                  and services in ipaddress.IPv4Network(s.cidr)), None)
    if first is None:
        raise LabError(f"lab site {site}: the services address {services} is in no in-band "
                       "subnet of the plan")
    first_net = ipaddress.IPv4Network(first.cidr)
    gateway = f"{first.gateway}/{first_net.prefixlen}"
    others = sorted(gateways - {gateway})
    if others:
        raise LabError(f"lab site {site}: namespace hosts must sit in the first rack's subnet "
                       f"{first_net} (the services address's); the plan puts some in "
                       f"{', '.join(others)}")
    group_of = {n.name: n.group for n in plan.nodes}
    racks: dict[str, RoutedRack] = {}
    lab_vms: list[LabVm] = []
    for name, address, gw in vms:
        mac = macs.get(f"{name}/{boot[group_of[name]]}")
        if mac is None:
            raise LabError(f"lab host {name}: no MAC for {name}/{boot[group_of[name]]} in the "
                           "site's macs.json (the VM's NIC takes the delivery manifest's MAC)")
        rack = ""
        if gw != gateway:
            subnet = next(s for s in plan.subnets if s.pool == "inband"
                          and ipaddress.IPv4Interface(address).ip
                          in ipaddress.IPv4Network(s.cidr))
            rack = subnet.name
            racks.setdefault(rack, RoutedRack(
                name=rack, gateway=gw, uplink=f"{first_net.network_address + 3}/"
                f"{first_net.prefixlen}", relay_to=str(services)))
        lab_vms.append(LabVm(name=name, address=address, mac=mac, rack=rack,
                             bmc_system_id=bmc_system_id(site, name)))
    if "compute" not in plan.fabrics:
        raise LabError(f"lab site {site}: no compute fabric to simulate")
    g = resolve_guids(plan, guids)
    return LabSpec(site=site, gateway=gateway, hosts=tuple(hosts),
                   ibsim_net=ibsim_net(plan, g), opensm_conf=opensm_conf(plan, g, file_dir=None),
                   opensm_files=opensm_files(plan, g), racks=tuple(racks.values()),
                   vms=tuple(lab_vms))


def lab_spec_for_site(site_path: str) -> LabSpec:
    """Load, lint and plan the site at ``site_path`` (directory or site.yaml) -> LabSpec."""
    loaded, plan = load_and_plan(Path(site_path))
    site_dir = loaded.path.parent
    vm_groups = load_vm_groups(site_dir, plan)
    macs = load_macs(site_dir, plan) if vm_groups else {}
    return lab_spec_from_plan(plan, load_discovered_guids(site_dir), vm_groups=vm_groups,
                              macs=macs)


def host_setup_for_site(site_path: str) -> HostSetup:
    """The ``host_setup`` hook that gives each lab host its simulated hardware."""
    _, plan = load_and_plan(Path(site_path))
    return hwsim_setup(plan)
