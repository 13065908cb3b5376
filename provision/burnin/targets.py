"""From the plan to burn-in targets, and the launch lines of multi-node NCCL tests (pure).

:func:`rack_targets` reads everything from the Plan (in-band address, GPUs, compute HCAs and
the leaf port each HCA is cabled to); :func:`mpirun_argv` and :func:`sbatch_script` render
the launchers (mpirun gets its hosts on the command line: no hostfile is left on a node);
:func:`mpijob_manifest` defers to the platform's MPIJob renderer for ``--backend kubernetes``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from provision.burnin.probes import nccl
from provision.errors import UsageError
from provision.plan.build import Plan
from provision.platform.mpijob import render_mpijob


@dataclass(frozen=True)
class NodeTarget:
    """One node under test."""

    name: str
    rack: str
    address: str
    gpus: int
    gpu_model: str
    hcas: tuple[str, ...]
    cabling: tuple[tuple[str, str], ...]  # (hca, "ib-leaf001 port 3")
    leaf: str

    def cable(self, hca: str) -> str:
        return dict(self.cabling).get(hca, "")


def rack_targets(plan: Plan, rack: str) -> list[NodeTarget]:
    """The GPU nodes of ``rack`` in plan order; UsageError naming the racks if unknown."""
    racks = sorted({n.rack for n in plan.nodes})
    if rack not in racks:
        raise UsageError(f"--rack {rack!r}: not a rack with nodes in site "
                         f"{plan.site.site.name}; racks: {', '.join(racks)}")
    links: dict[str, dict[str, str]] = {}
    for link in plan.node_fabric_links():
        links.setdefault(link.a, {})[link.a_port] = f"{link.b} port {link.b_port}"
    out = []
    for node in plan.nodes:
        if node.rack != rack:
            continue
        kind = plan.catalog.nodes[node.type]
        if not kind.gpus:
            continue
        inband = [a for a in plan.addresses_of(node.name) if a.pool == "inband"]
        if not inband:
            raise UsageError(f"node {node.name}: no in-band address in the plan")
        hcas = tuple(h.device for h in kind.compute_hcas)
        cabling = links.get(node.name, {})
        first = cabling.get(hcas[0], "") if hcas else ""
        out.append(NodeTarget(node.name, node.rack, inband[0].address, kind.gpus,
                              kind.gpu_model or "", hcas, tuple(sorted(cabling.items())),
                              first.split(" ")[0] if first else ""))
    if not out:
        raise UsageError(f"--rack {rack!r}: no GPU nodes in this rack")
    return out


def other_rack_node(plan: Plan, rack: str) -> str | None:
    """The first GPU node of another rack on the same InfiniBand fabric as ``rack``'s first
    node (the cross-rack partner of ``full``; no IB path joins two fabrics)."""
    fabric_of = {lk.a: lk.fabric for lk in plan.node_fabric_links()}
    here = next((fabric_of[n.name] for n in plan.nodes
                 if n.rack == rack and n.name in fabric_of), None)
    for node in plan.nodes:
        if node.rack != rack and plan.catalog.nodes[node.type].gpus \
                and (here is None or fabric_of.get(node.name) == here):
            return node.name
    return None


def host_list(nodes: Sequence[str], slots: int) -> str:
    """Open MPI's ``--host`` value: ``node:SLOTS`` per node, comma-separated."""
    return ",".join(f"{n}:{slots}" for n in nodes)


def nccl_argv(test: str, gpus_per_process: int, min_bytes: str, max_bytes: str) -> list[str]:
    return nccl.command(test, min_bytes=min_bytes, max_bytes=max_bytes,
                        gpus_per_process=gpus_per_process)


def mpirun_argv(nodes: Sequence[str], per_node: int, test_argv: Sequence[str]) -> list[str]:
    """``mpirun --host n1:K,n2:K -npernode K`` with the NCCL settings burn-in wants."""
    return ["mpirun", "--allow-run-as-root", "--host", host_list(nodes, per_node),
            "-npernode", str(per_node),
            "--bind-to", "numa", "-x", "NCCL_DEBUG=WARN", "-x", "NCCL_IB_TIMEOUT=22",
            *test_argv]


def sbatch_script(site: str, label: str, nodes: Sequence[str], gpus: int,
                  test_argv: Sequence[str], time_limit: str = "00:30:00") -> str:
    """A Slurm batch script running one NCCL test over ``nodes`` (one task per GPU)."""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=burnin-{site}-{label}",
        f"#SBATCH --nodes={len(nodes)}",
        f"#SBATCH --nodelist={','.join(nodes)}",
        f"#SBATCH --ntasks-per-node={gpus}",
        f"#SBATCH --gpus-per-node={gpus}",
        "#SBATCH --exclusive",
        f"#SBATCH --time={time_limit}",
        f"#SBATCH --output=burnin-{site}-{label}-%j.out",
        "export NCCL_DEBUG=WARN NCCL_IB_TIMEOUT=22",
        f"srun --mpi=pmix {shlex.join(test_argv)}",
    ]
    return "\n".join(lines) + "\n"


def mpijob_manifest(plan: Plan, nodes: Sequence[str], test: str, min_bytes: str,
                    max_bytes: str) -> str:
    """The platform's MPIJob manifest for this test."""
    return render_mpijob(plan, list(nodes), test, min_bytes=min_bytes, max_bytes=max_bytes)
