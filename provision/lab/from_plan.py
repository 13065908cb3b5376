"""A site's plan -> the :class:`~provision.lab.spec.LabSpec` that ``gpuctl lab up`` builds.

Everything comes from the plan, nothing is re-derived: host names and in-band addresses
(boot interface) from the plan's addresses, the gateway from the in-band subnet of the
site's (single) rack, HCA ids ``"<host> mlx5_N"`` from the compute fabric as the ibsim net
file names them, the net file and OpenSM files from the renderers. OpenSM files are rendered
with bare file names; the lab writes ``opensm_files`` next to ``opensm.conf`` and rewrites
those names to absolute paths (:func:`provision.lab.fabric.render_opensm_conf`). GUIDs are
the discovered ones when ``discovered_guids.json`` sits next to site.yaml, else synthetic.
BMC system ids are ``uuid5`` of site and host, stable across runs.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from provision.errors import LabError
from provision.lab.hardware import hwsim_setup
from provision.lab.hostfs import HostSetup
from provision.lab.spec import LabHost, LabSpec
from provision.loader import load_discovered_guids
from provision.plan.build import Plan
from provision.plan.ibnames import hca_id
from provision.plan.load import load_and_plan
from provision.render.ibsim import ibsim_net
from provision.render.opensm import opensm_conf, opensm_files, resolve_guids

LAB_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "gpuctl-lab")


def bmc_system_id(site: str, host: str) -> str:
    return str(uuid.uuid5(LAB_NAMESPACE, f"{site}/{host}"))


def lab_spec_from_plan(plan: Plan, guids: dict[str, str] | None = None) -> LabSpec:
    """The LabSpec of ``plan`` (pure; :func:`lab_spec_for_site` loads the site)."""
    site = plan.site.site.name
    boot = {g.name: g.boot_interface for g in plan.site.node_groups}
    hosts: list[LabHost] = []
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
        gateways.add(f"{a.gateway}/{a.prefix}")
        hosts.append(LabHost(name=n.name, address=f"{a.address}/{a.prefix}",
                             bmc_system_id=bmc_system_id(site, n.name),
                             hca_ids=tuple(hcas.get(n.name, [])), catalog_type=n.type))
    if len(gateways) != 1:
        raise LabError(f"lab site {site}: the lab runs one rack (one in-band subnet); the plan "
                       f"has {len(gateways)}: {', '.join(sorted(gateways))}")
    if "compute" not in plan.fabrics:
        raise LabError(f"lab site {site}: no compute fabric to simulate")
    g = resolve_guids(plan, guids)
    return LabSpec(site=site, gateway=gateways.pop(), hosts=tuple(hosts),
                   ibsim_net=ibsim_net(plan, g), opensm_conf=opensm_conf(plan, g, file_dir=None),
                   opensm_files=opensm_files(plan, g))


def lab_spec_for_site(site_path: str) -> LabSpec:
    """Load, lint and plan the site at ``site_path`` (directory or site.yaml) -> LabSpec."""
    loaded, plan = load_and_plan(Path(site_path))
    return lab_spec_from_plan(plan, load_discovered_guids(loaded.path.parent))


def host_setup_for_site(site_path: str) -> HostSetup:
    """The ``host_setup`` hook that gives each lab host its simulated hardware."""
    _, plan = load_and_plan(Path(site_path))
    return hwsim_setup(plan)
