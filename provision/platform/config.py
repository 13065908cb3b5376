"""Plan -> PlatformConfig: the pure derivation of a site's Kubernetes platform stack config.

Every value here is read from the Plan (one source of truth): node labels, taints and the
Kueue topology are the plan's own (:mod:`provision.render.k8s_topology`, also written by
``gpuctl plan`` to ``k8s/``), RDMA resources come from the node type's HCAs and the IPoIB
interfaces of the address plan.

Chart versions are pinned here, each with the public page that shows the release exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from provision.errors import PlanError
from provision.plan.build import Plan
from provision.platform.model import (
    DUMPER,
    Chart,
    GpuOperator,
    Kueue,
    KueueFlavor,
    Monitoring,
    NetworkOperator,
    NodeLabels,
    PlatformConfig,
    RdmaResource,
    Taint,
)
from provision.render import k8s_topology as kt

PROJECT = "gpuctl-platform"
"""Pulumi project name (stacks/platform/Pulumi.yaml); also the config namespace."""
CONFIG_KEY = "platform"
"""Stack config key holding the PlatformConfig object: ``gpuctl-platform:platform``."""

GPU_OPERATOR = Chart(
    name="gpu-operator", repo="https://helm.ngc.nvidia.com/nvidia", version="v25.10.1",
    namespace="gpu-operator",
    source="https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/"
           "release-notes.html#v25-10-1")
NETWORK_OPERATOR = Chart(
    name="network-operator", repo="https://helm.ngc.nvidia.com/nvidia", version="25.10.0",
    namespace="nvidia-network-operator",
    source="https://docs.nvidia.com/networking/display/kubernetes25100/"
           "deployment-guide-kubernetes.html")
KUEUE = Chart(
    name="kueue", repo="oci://registry.k8s.io/kueue/charts", version="0.18.8",
    namespace="kueue-system",
    source="https://github.com/kubernetes-sigs/kueue/blob/main/CHANGELOG/CHANGELOG-0.18.md")
MPI_OPERATOR = Chart(
    name="mpi-operator",
    repo="https://raw.githubusercontent.com/kubeflow/mpi-operator/v0.7.0/deploy/v2beta1/"
         "mpi-operator.yaml",
    version="v0.7.0", namespace="mpi-operator",
    source="https://github.com/kubeflow/mpi-operator/releases/tag/v0.7.0 (no Helm chart "
           "upstream: the release manifest is applied)")

MONITORING_NAMESPACE = "gpuctl-system"
CRITICAL_XIDS = [48, 74, 79, 94, 95, 119, 120]
"""Xids that mean a GPU needs attention: DBE (48), NVLink (74), fallen off the bus (79),
contained/uncontained ECC (94/95), GSP errors (119/120)."""


def _planes(plan: Plan) -> int:
    cf = plan.site.fabrics.compute
    if cf is None or "compute" not in plan.fabrics:
        return 0
    return cf.planes if cf.topology == "multi-plane" else 1


def node_labels(plan: Plan) -> list[NodeLabels]:
    """Labels and taints of every Kubernetes node, in plan order: the plan's own
    (:func:`provision.render.k8s_topology.node_topology`, what ``gpuctl plan`` writes to
    ``k8s/node-labels.yaml``). ``kubernetes.io/hostname`` is the kubelet's: gpuctl never
    co-owns it (a Pulumi patch would strip it on destroy)."""
    taint = [Taint(key=kt.GPU_TAINT_KEY, value=kt.GPU_TAINT_VALUE, effect="NoSchedule")]
    return [NodeLabels(name=n.name, labels=n.labels, taints=taint if n.gpu_taint else [])
            for n in kt.node_topology(plan)]


def kueue(plan: Plan) -> Kueue:
    """The plan's Kueue topology and flavors (what ``k8s/kueue-topology.yaml`` holds)."""
    k = kt.kueue_topology(plan)
    return Kueue(chart=KUEUE, api_version=kt.KUEUE_API, topology_name=k.name,
                 levels=list(k.levels),
                 flavors=[KueueFlavor(name=f.name, node_labels=f.node_labels, gpus=f.gpus)
                          for f in k.flavors])


def rdma_resources(plan: Plan, link_types: Sequence[str]) -> list[RdmaResource]:
    """One RDMA shared-device resource per rail: ``rdma/rail<r>`` selecting netdev ``ib<r>``."""
    fab = plan.fabrics.get("compute")
    if fab is None:
        return []
    attached = sorted({lk.a for lk in fab.links if lk.kind == "node-leaf"})
    if not attached:
        return []
    first = next(n for n in plan.nodes if n.name in set(attached))
    hcas = plan.catalog.nodes[first.type].compute_hcas
    ipoib = [a.interface for a in plan.addresses_of(first.name) if a.pool == "ipoib"]
    out: list[RdmaResource] = []
    for r, hca in enumerate(hcas):
        if r >= len(ipoib):
            raise PlanError(f"platform: rail {r} ({hca.device}) of {first.name} has no IPoIB "
                            f"interface in the address plan; add addressing.ipoib pools so "
                            f"the RDMA device plugin can select it")
        out.append(RdmaResource(name=f"rail{r}", devices=[hca.device], if_names=[ipoib[r]],
                                link_types=list(link_types)))
    return out


def stack_config(plan: Plan, *, host_installs_driver: bool = True,
                 rule_labels: dict[str, str] | None = None) -> PlatformConfig:
    """The platform stack config of the plan's site.

    ``host_installs_driver`` (default True: gpuctl's nvidia roles install the driver, the
    container toolkit and DOCA-OFED on the host) turns the GPU Operator's driver and toolkit
    and the Network Operator's OFED container off.
    """
    sw = plan.site.software
    site = plan.site.site.name
    fab = plan.fabrics.get("compute")
    nodes = node_labels(plan)
    link_types = ["ether"] if sw.doca_profile == "doca-roce" else ["infiniband"]
    hcas = sorted({h.device for n in plan.nodes
                   for h in plan.catalog.nodes[n.type].compute_hcas})
    return PlatformConfig(
        site=site,
        kubernetes=sw.kubernetes,
        namespaces=sorted({GPU_OPERATOR.namespace, NETWORK_OPERATOR.namespace,
                           KUEUE.namespace, MONITORING_NAMESPACE}),
        planes=_planes(plan),
        fabric_topology=fab.topology if fab is not None else "none",
        gpu_operator=GpuOperator(
            chart=GPU_OPERATOR, driver_enabled=not host_installs_driver,
            toolkit_enabled=not host_installs_driver, driver_version=sw.driver_version,
            kernel_module_type=sw.kernel_modules),
        network_operator=NetworkOperator(
            chart=NETWORK_OPERATOR, ofed_driver_enabled=not host_installs_driver,
            doca_profile=sw.doca_profile, rdma_resources=rdma_resources(plan, link_types)),
        kueue=kueue(plan),
        mpi_operator=MPI_OPERATOR,
        monitoring=Monitoring(
            namespace=MONITORING_NAMESPACE,
            rule_labels=dict(rule_labels) if rule_labels is not None
            else {"release": "kube-prometheus-stack"},
            hca_devices=hcas, critical_xids=list(CRITICAL_XIDS)),
        nodes=nodes,
    )


def stack_file(cfg: PlatformConfig) -> str:
    """The Pulumi stack settings file (``Pulumi.<site>.yaml``) holding ``cfg``; deterministic."""
    doc: dict[str, Any] = {"config": {f"{PROJECT}:{CONFIG_KEY}": cfg.model_dump(mode="json")}}
    header = (f"# Pulumi stack {cfg.site} of {PROJECT}: generated by "
              f"`gpuctl platform config` from the site plan. Do not edit; regenerate.\n")
    return header + yaml.dump(doc, Dumper=DUMPER, sort_keys=True, default_flow_style=False,
                              width=100)


def load_config(data: Any) -> PlatformConfig:
    """PlatformConfig from the object stored in the stack config (strict validation)."""
    return PlatformConfig.model_validate(data)
