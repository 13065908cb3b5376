"""Which software stacks and tests each node gets, from what it has and its role.

One definition, read by every place that picks hosts: the Ansible groups ``gpuctl plan``
and a provision run render (the playbooks' ``hosts:``), the phases of ``gpuctl provision``
(a phase skips a host it does not apply to, saying why) and its offline dry run.

- ``gpu``: the node type has GPUs -> the NVIDIA phase (driver, CUDA, NCCL, DCGM, Fabric
  Manager), the NVIDIA container toolkit and GPU burn-in.
- ``fabric``: the node type has compute-fabric HCAs -> the InfiniBand phase (DOCA-OFED,
  peermem, IPoIB, perftest, nccl-tests).
- ``kubernetes``: every role but ``storage`` (storage servers serve the cluster, they do not
  run its pods) -> the Kubernetes phase and the platform stack.

Base configuration, imaging and preflight apply to every node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from provision.plan.build import Plan

Stack = Literal["gpu", "fabric", "kubernetes"]
STACKS: tuple[Stack, ...] = ("gpu", "fabric", "kubernetes")

GROUPS: dict[Stack, str] = {"gpu": "gpuctl_gpu_nodes", "fabric": "gpuctl_fabric_nodes",
                            "kubernetes": "gpuctl_kubernetes_nodes"}
"""The Ansible group of the nodes that get each stack (the playbooks' ``hosts:``)."""

PHASE_STACK: dict[str, Stack] = {"nvidia": "gpu", "fabric": "fabric",
                                 "kubernetes": "kubernetes", "platform": "kubernetes",
                                 "burnin": "gpu"}
"""Phases that apply only to the nodes with a stack; every other phase applies to all."""

_WITHOUT: dict[Stack, str] = {"gpu": "no GPUs", "fabric": "no compute-fabric HCAs",
                              "kubernetes": "a storage node is not a Kubernetes node"}
NOT_KUBERNETES_ROLES = frozenset({"storage"})


def node_stacks(plan: Plan) -> dict[str, frozenset[Stack]]:
    """Every node's stacks, by host name, in plan order."""
    per_type: dict[tuple[str, str], frozenset[Stack]] = {}
    out: dict[str, frozenset[Stack]] = {}
    for n in plan.nodes:
        key = (n.type, n.role)
        stacks = per_type.get(key)
        if stacks is None:
            ntype = plan.catalog.nodes[n.type]
            have = {"gpu": ntype.gpus > 0, "fabric": bool(ntype.compute_hcas),
                    "kubernetes": n.role not in NOT_KUBERNETES_ROLES}
            stacks = per_type[key] = frozenset(s for s in STACKS if have[s])
        out[n.name] = stacks
    return out


def groups(plan: Plan) -> dict[str, list[str]]:
    """``{Ansible group: hosts in plan order}`` for every stack (empty groups kept, so a
    playbook's ``hosts:`` always names a group the inventory has)."""
    stacks = node_stacks(plan)
    return {GROUPS[s]: [h for h, have in stacks.items() if s in have] for s in STACKS}


def why_not(phase: str, host: str, stacks: Mapping[str, frozenset[Stack]]) -> str | None:
    """None when ``phase`` applies to ``host``, else the reason it does not (hosts that are
    not nodes, e.g. switches, never get a node phase)."""
    need = PHASE_STACK.get(phase)
    if need is None:
        return None
    have = stacks.get(host)
    if have is None:
        return "not a node of the plan"
    return None if need in have else _WITHOUT[need]


def split(phase: str, hosts: Iterable[str], stacks: Mapping[str, frozenset[Stack]]
          ) -> tuple[list[str], dict[str, str]]:
    """(hosts ``phase`` applies to, {host it skips: why}), both in the given order."""
    todo: list[str] = []
    skip: dict[str, str] = {}
    for h in hosts:
        reason = why_not(phase, h, stacks)
        if reason is None:
            todo.append(h)
        else:
            skip[h] = reason
    return todo, skip
