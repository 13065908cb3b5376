"""The Kubernetes topology of a site: node labels, taints and the Kueue topology.

One definition, read by both consumers: ``gpuctl plan``'s ``k8s/`` files
(:mod:`provision.render.k8s`) and the platform stack's config
(:mod:`provision.platform.config`), so the labels a scheduler selects on are the labels the
nodes carry. Only Kubernetes nodes appear (:mod:`provision.plan.stacks`: every role but
storage). Values come from the Plan: location from the racking plan, block and spine from
the compute-fabric links (:mod:`provision.render.topo`, shared with Slurm and Ansible).

Labels: ``topology.kubernetes.io/{region,zone}`` (site, site-hall); NVIDIA topograph's
``network.topology.nvidia.com/{datacenter,spine,block,accelerator}`` (accelerator = the
NVLink domain: the rack of an NVL72 rack, the node of an NVSwitch node); and
``gpuctl.io/{hall,row,rack,node-group,node-type,role}``. GPU nodes are tainted
``nvidia.com/gpu=present:NoSchedule``. Kueue Topology Aware Scheduling levels: block
(scalable unit or leaf), rack, ``kubernetes.io/hostname`` (the kubelet's label: gpuctl never
sets it); one ResourceFlavor per GPU node group.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.plan import stacks
from provision.plan.build import Plan
from provision.render.topo import Topology, topology

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
HALL_LABEL = "gpuctl.io/hall"
ROW_LABEL = "gpuctl.io/row"
RACK_LABEL = "gpuctl.io/rack"
GROUP_LABEL = "gpuctl.io/node-group"
TYPE_LABEL = "gpuctl.io/node-type"
ROLE_LABEL = "gpuctl.io/role"
HOSTNAME_LABEL = "kubernetes.io/hostname"

TOPOGRAPH_PREFIX = "network.topology.nvidia.com"
TOPOGRAPH_ACCELERATOR = f"{TOPOGRAPH_PREFIX}/accelerator"
TOPOGRAPH_BLOCK = f"{TOPOGRAPH_PREFIX}/block"
TOPOGRAPH_SPINE = f"{TOPOGRAPH_PREFIX}/spine"
TOPOGRAPH_DATACENTER = f"{TOPOGRAPH_PREFIX}/datacenter"
BLOCK_LABEL = TOPOGRAPH_BLOCK
"""The fabric block a node is in; Kueue's widest level."""

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"
GPU_TAINT_EFFECT = "NoSchedule"

KUEUE_API = "kueue.x-k8s.io/v1beta2"
"""The Kueue API of the pinned Kueue release (provision/platform/config.py)."""
LEVELS = (BLOCK_LABEL, RACK_LABEL, HOSTNAME_LABEL)
"""Kueue topology levels, widest first."""


@dataclass(frozen=True)
class NodeTopology:
    name: str
    labels: dict[str, str]  # sorted by key
    gpu_taint: bool


@dataclass(frozen=True)
class Flavor:
    name: str
    node_labels: dict[str, str]
    gpus: int  # GPUs on the flavor's nodes


@dataclass(frozen=True)
class KueueTopology:
    name: str
    levels: tuple[str, ...]
    flavors: tuple[Flavor, ...]


def node_topology(plan: Plan, topo: Topology | None = None) -> list[NodeTopology]:
    """Labels and taint of every Kubernetes node, in plan order (``topo``: the plan's
    topology, when the caller has it)."""
    topo = topo if topo is not None else topology(plan)
    have = stacks.node_stacks(plan)
    site = plan.site.site.name
    racks = {r.name: r for r in plan.racks}
    out: list[NodeTopology] = []
    for n in plan.nodes:
        if "kubernetes" not in have[n.name]:
            continue
        rack = racks[n.rack]
        ntype = plan.catalog.nodes[n.type]
        labels = {REGION_LABEL: site, ZONE_LABEL: f"{site}-{rack.hall}",
                  TOPOGRAPH_DATACENTER: f"{site}-{rack.hall}",
                  HALL_LABEL: rack.hall, ROW_LABEL: rack.row, RACK_LABEL: n.rack,
                  GROUP_LABEL: n.group, TYPE_LABEL: n.type, ROLE_LABEL: n.role}
        if n.name in topo.block:
            labels[TOPOGRAPH_SPINE] = topo.spine[n.name]
            labels[TOPOGRAPH_BLOCK] = topo.block[n.name]
        if ntype.form_factor == "nvl-rack":
            labels[TOPOGRAPH_ACCELERATOR] = n.rack
        elif ntype.nvswitch:
            labels[TOPOGRAPH_ACCELERATOR] = n.name
        out.append(NodeTopology(n.name, dict(sorted(labels.items())),
                                gpu_taint="gpu" in have[n.name] and n.role == "gpu"))
    return out


def kueue_topology(plan: Plan) -> KueueTopology:
    """The Kueue Topology and one ResourceFlavor per GPU node group that has nodes."""
    site = plan.site.site.name
    have = stacks.node_stacks(plan)
    gpus: dict[str, int] = {}
    for n in plan.nodes:
        if n.role == "gpu" and {"gpu", "kubernetes"} <= have[n.name]:
            gpus[n.group] = gpus.get(n.group, 0) + plan.catalog.nodes[n.type].gpus
    flavors = tuple(Flavor(f"{site}-{g.name}", {GROUP_LABEL: g.name}, gpus[g.name])
                    for g in plan.site.node_groups if g.name in gpus)
    return KueueTopology(f"{site}-fabric", LEVELS, flavors)
