"""Plan -> every configuration file real systems consume, ``{relative path: text}``.

Pure and deterministic; ``gpuctl plan`` writes the result next to the planning artifacts:

=========================  ==========================================================
``ansible/``               inventory.yml, group_vars/{all,<group>}.yml, host_vars/<host>.yml
``dhcp/kea-dhcp4.conf``    Kea DHCPv4: subnets, reservations, PXE/iPXE classes
``dns/``                   forward zone, reverse zones per /24, zones.conf
``opensm/``                opensm.conf, root/cn/io GUID files, partitions.conf,
                           node-name-map (``opensm/plane<N>/`` per plane; a further
                           InfiniBand fabric in ``opensm/<fabric>/``)
``ibsim/fabric.net``       the compute fabric for Debian's ibsim (and ``plane<N>.net``;
                           a further fabric in ``ibsim/<fabric>/``)
``slurm/``                 topology.conf (tree), topology-block.conf (block)
``k8s/``                   node-labels.yaml, kueue-topology.yaml (sites with Kubernetes)
``netbox/``                bulk-import CSVs and device-types.yaml
``cloud-init/<group>/``    Ubuntu autoinstall user-data and meta-data
=========================  ==========================================================

``guids`` (name -> GUID, from ``gpuctl fabric verify``'s discovered_guids.json, read by the
CLI) override the synthetic GUIDs; ``macs`` (``"<device>/<interface>"`` -> MAC) turn DHCP
reservations into hardware-address reservations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping

from provision.plan.build import Plan
from provision.render.ansible import ansible_tree
from provision.render.cloudinit import cloudinit_tree
from provision.render.dhcp import dhcp_tree
from provision.render.dns import dns_tree
from provision.render.ibsim import ib_fabrics, ibsim_nets, split_planes
from provision.render.k8s import k8s_tree
from provision.render.netbox import netbox_tree
from provision.render.opensm import opensm_tree, resolve_guids
from provision.render.slurm import slurm_tree
from provision.render.topo import topology


def fabric_tree(plan: Plan, guids: Mapping[str, str] | None = None) -> dict[str, str]:
    """``ibsim/`` and ``opensm/`` for every InfiniBand fabric (empty without one): the compute
    fabric's at the top, a further fabric's in a directory named after it."""
    graphs = ib_fabrics(plan)
    g = resolve_guids(plan, guids, graphs)
    files: dict[str, str] = {}
    for fabric, whole in graphs.items():
        base = "ibsim/" if fabric == "compute" else f"ibsim/{fabric}/"
        planes = [None, *(p for p in split_planes(whole) if p is not None)]
        files.update({f"{base}fabric.net" if plane is None else f"{base}plane{plane}.net": text
                      for plane, text in ibsim_nets(plan, g, planes, fabric, whole).items()})
        files.update(opensm_tree(plan, g, fabric, whole))
    return files


ARTIFACTS = ("ansible", "dhcp", "dns", "fabric", "slurm", "k8s", "netbox", "cloud-init")
"""Artifact families in rendering order; ``render_artifacts(only=...)`` takes a subset."""


def render_artifacts(plan: Plan, guids: Mapping[str, str] | None = None,
                     macs: Mapping[str, str] | None = None,
                     only: Collection[str] | None = None) -> dict[str, str]:
    """Every artifact (or the families in ``only``), keyed by path relative to the output
    directory. The plan's topology, which ansible, slurm and k8s all read, is built once."""
    topo = functools.cache(lambda: topology(plan))
    makers: dict[str, Callable[[], dict[str, str]]] = {
        "ansible": lambda: ansible_tree(plan, topo()),
        "dhcp": lambda: dhcp_tree(plan, macs),
        "dns": lambda: dns_tree(plan),
        "fabric": lambda: fabric_tree(plan, guids),
        "slurm": lambda: slurm_tree(plan, topo()),
        "k8s": lambda: k8s_tree(plan, topo()),
        "netbox": lambda: netbox_tree(plan),
        "cloud-init": lambda: cloudinit_tree(plan),
    }
    unknown = set(only or ()) - set(makers)
    if unknown:
        raise ValueError(f"unknown artifact families {sorted(unknown)}; known: {ARTIFACTS}")
    files: dict[str, str] = {}
    for name in ARTIFACTS:
        if only is None or name in only:
            files.update(makers[name]())
    return dict(sorted(files.items()))
