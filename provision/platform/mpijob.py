"""An MPIJob (kubeflow.org/v2beta1) running an nccl-tests binary on chosen nodes (pure).

Workers are pinned to the named nodes (node affinity on ``kubernetes.io/hostname``), spread
one per node (pod anti-affinity), and kept inside the nodes' common block/rack with a
nodeSelector on gpuctl's topology labels plus a pod affinity on the block, so the test
measures the fabric the plan intended. Each worker asks for every GPU of its node and one
share of each rail's RDMA resource (``rdma/rail<r>``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import Any

import yaml

from provision.errors import UsageError
from provision.plan.build import Plan
from provision.platform.config import node_labels
from provision.platform.manifests import gpu_tolerations
from provision.platform.model import BLOCK_LABEL, HOSTNAME_LABEL, RACK_LABEL

NCCL_TESTS = ("all_reduce_perf", "all_gather_perf", "alltoall_perf", "broadcast_perf",
              "reduce_perf", "reduce_scatter_perf", "sendrecv_perf", "gather_perf",
              "scatter_perf", "hypercube_perf")
"""The nccl-tests binaries."""

DEFAULT_IMAGE = "ghcr.io/coreweave/nccl-tests:13.0.2-devel-ubuntu22.04-nccl2.29.2-1-d73ec07"
"""A public image with nccl-tests, OpenMPI and sshd (the MPI Operator's launcher needs ssh)."""

TESTS_DIR = "/opt/nccl_tests/build"
JOB_LABEL = "gpuctl.io/nccl-test"
_SIZE = re.compile(r"^\d+[KMG]?$")


def _common(values: list[str | None]) -> str | None:
    return values[0] if values and values[0] is not None and len(set(values)) == 1 else None


def render_mpijob(plan: Plan, nodes: Sequence[str], test: str = "all_reduce_perf", *,
                  name: str | None = None, namespace: str = "default",
                  image: str = DEFAULT_IMAGE, min_bytes: str = "8", max_bytes: str = "16G",
                  step_factor: int = 2, queue: str | None = None) -> str:
    """The MPIJob manifest as YAML; raises UsageError for an unknown node or test."""
    if test not in NCCL_TESTS:
        raise UsageError(f"unknown nccl test {test!r}; choose one of {', '.join(NCCL_TESTS)}")
    for size in (min_bytes, max_bytes):
        if not _SIZE.match(size):
            raise UsageError(f"message size {size!r} is not a number with optional K/M/G")
    if not nodes:
        raise UsageError("an NCCL test needs at least one node")
    if len(set(nodes)) != len(nodes):
        raise UsageError(f"node list {list(nodes)!r} names a node twice")
    by_name = {n.name: n for n in plan.nodes}
    labels = {n.name: n.labels for n in node_labels(plan)}
    unknown = [n for n in nodes if n not in by_name]
    if unknown:
        raise UsageError(f"node {unknown[0]!r} is not in site {plan.site.site.name}")
    types = {plan.catalog.nodes[by_name[n].type].name for n in nodes}
    if len(types) != 1:
        raise UsageError(f"nodes {list(nodes)!r} mix node types {sorted(types)}; an NCCL test "
                         f"runs on one type")
    ntype = plan.catalog.nodes[types.pop()]
    gpus = ntype.gpus
    if gpus == 0:
        raise UsageError(f"node type {ntype.name} has no GPUs")
    job = name or f"nccl-{test.removesuffix('_perf').replace('_', '-')}-{len(nodes)}n"
    hcas = ",".join(h.device for h in ntype.compute_hcas)
    ranks = gpus * len(nodes)
    mpirun = ["mpirun", "--allow-run-as-root", "-np", str(ranks), "-npernode", str(gpus),
              "--bind-to", "none", "-x", "NCCL_DEBUG=INFO", "-x", "LD_LIBRARY_PATH"]
    if hcas:
        mpirun += ["-x", f"NCCL_IB_HCA={hcas}"]
    mpirun += [f"{TESTS_DIR}/{test}", "-b", min_bytes, "-e", max_bytes, "-f", str(step_factor),
               "-g", "1"]
    selector: dict[str, str] = {}
    block = _common([labels[n].get(BLOCK_LABEL) for n in nodes])
    rack = _common([labels[n].get(RACK_LABEL) for n in nodes])
    if block is not None:
        selector[BLOCK_LABEL] = block
    if rack is not None:
        selector[RACK_LABEL] = rack
    match = {"matchLabels": {JOB_LABEL: job}}
    affinity: dict[str, Any] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": list(nodes)}]}]}},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": match, "topologyKey": HOSTNAME_LABEL}]},
    }
    if block is not None:
        affinity["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": match, "topologyKey": BLOCK_LABEL}]}
    limits: dict[str, Any] = {"nvidia.com/gpu": gpus}
    for r in range(len(ntype.compute_hcas)):
        limits[f"rdma/rail{r}"] = 1
    worker_meta: dict[str, Any] = {"labels": {JOB_LABEL: job}}
    if queue is not None:
        worker_meta["annotations"] = {"kueue.x-k8s.io/podset-preferred-topology": BLOCK_LABEL}
    worker_spec: dict[str, Any] = {
        "affinity": affinity,
        "tolerations": gpu_tolerations(),
        "containers": [{
            "name": "worker", "image": image,
            "command": ["/usr/sbin/sshd", "-De"],
            "resources": {"limits": limits, "requests": dict(limits)},
            "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}},
            "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
        }],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
    }
    if selector:
        worker_spec["nodeSelector"] = dict(sorted(selector.items()))
    meta: dict[str, Any] = {"name": job, "namespace": namespace,
                            "labels": {"app.kubernetes.io/managed-by": "gpuctl", JOB_LABEL: job}}
    if queue is not None:
        meta["labels"]["kueue.x-k8s.io/queue-name"] = queue
    doc = {
        "apiVersion": "kubeflow.org/v2beta1", "kind": "MPIJob", "metadata": meta,
        "spec": {
            "slotsPerWorker": gpus,
            "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 0},
            "mpiImplementation": "OpenMPI",
            "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "template": {
                    "metadata": {"labels": {JOB_LABEL: f"{job}-launcher"}},
                    "spec": {"tolerations": gpu_tolerations(), "containers": [{
                        "name": "launcher", "image": image,
                        "command": ["/bin/bash", "-c", shlex.join(mpirun)]}]}}},
                "Worker": {"replicas": len(nodes), "template": {
                    "metadata": worker_meta, "spec": worker_spec}},
            },
        },
    }
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=100)
