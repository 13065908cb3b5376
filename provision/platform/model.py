"""The typed configuration of a site's Kubernetes platform stack (one Pulumi stack per site).

``PlatformConfig`` is what ``gpuctl platform config SITE`` writes into the stack's config
file and what ``stacks/platform/__main__.py`` reads back: a value computed from the Plan, so
the Pulumi program itself derives nothing. The models are strict (unknown keys are errors)
and frozen, like the site model.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import Field

from provision.models.base import StrictModel
from provision.render.k8s_topology import (  # the one definition of the label keys
    BLOCK_LABEL,
    GPU_TAINT_KEY,
    GROUP_LABEL,
    HALL_LABEL,
    HOSTNAME_LABEL,
    RACK_LABEL,
    ROLE_LABEL,
    ROW_LABEL,
    TOPOGRAPH_ACCELERATOR,
    TOPOGRAPH_BLOCK,
    TOPOGRAPH_DATACENTER,
    TOPOGRAPH_SPINE,
    TYPE_LABEL,
)

__all__ = ["BLOCK_LABEL", "GPU_TAINT_KEY", "GROUP_LABEL", "HALL_LABEL", "HOSTNAME_LABEL",
           "RACK_LABEL", "ROLE_LABEL", "ROW_LABEL", "TOPOGRAPH_ACCELERATOR", "TOPOGRAPH_BLOCK",
           "TOPOGRAPH_DATACENTER", "TOPOGRAPH_SPINE", "TYPE_LABEL"]


DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's safe dumper when available (the 2,048-node stack file is 1.4 MB)."""


class Chart(StrictModel):
    """One pinned Helm chart (or, for charts without a repository, a pinned manifest URL)."""

    name: str = Field(description="Chart name in its repository, e.g. gpu-operator.")
    repo: str = Field(description="Helm repository URL (or oci:// registry path).")
    version: str = Field(description="Exact chart version; never a range.")
    namespace: str = Field(description="Namespace the release is installed in.")
    source: str = Field(default="", description="Where this version was checked to exist.")


class Taint(StrictModel):
    """A node taint (core/v1 Taint)."""

    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodeLabels(StrictModel):
    """Labels and taints gpuctl owns on one Kubernetes node."""

    name: str = Field(description="Node name (the host's name, as kubelet registers it).")
    labels: dict[str, str] = Field(description="Label key -> value.")
    taints: list[Taint] = Field(default_factory=list, description="Taints to set.")


class RdmaResource(StrictModel):
    """One RDMA shared device plugin resource: one rail (or plane) of the compute fabric."""

    name: str = Field(description="Resource name without prefix, e.g. rail0 (-> rdma/rail0).")
    devices: list[str] = Field(description="RDMA devices of the rail, e.g. [mlx5_0] (docs).")
    if_names: list[str] = Field(description="Netdevs the plugin selects, e.g. [ib0].")
    link_types: list[str] = Field(description="Selector linkTypes: infiniband or ether.")
    rdma_hca_max: int = Field(default=63, ge=1, description="Pods sharing the device.")


class GpuOperator(StrictModel):
    """GPU Operator settings derived from the site."""

    chart: Chart
    driver_enabled: bool = Field(description="False when gpuctl's roles install the driver.")
    toolkit_enabled: bool = Field(description="False when the roles install the toolkit.")
    driver_version: str = Field(description="Driver version (used only if driver_enabled).")
    kernel_module_type: str = Field(description="auto, open or proprietary.")
    dcgm_exporter: bool = Field(default=True, description="Deploy dcgm-exporter.")
    metrics_config: str = Field(default="gpuctl-dcgm-metrics",
                                description="ConfigMap holding the dcgm-exporter counters CSV.")


class NetworkOperator(StrictModel):
    """Network Operator settings: RDMA shared device plugin per rail, host OFED."""

    chart: Chart
    ofed_driver_enabled: bool = Field(description="False when the roles install DOCA-OFED.")
    doca_profile: str = Field(description="The site's DOCA host profile.")
    resource_prefix: str = Field(default="rdma", description="Prefix of the RDMA resources.")
    rdma_resources: list[RdmaResource] = Field(default_factory=list)


class KueueFlavor(StrictModel):
    """One ResourceFlavor: the nodes of one GPU node group."""

    name: str
    node_labels: dict[str, str] = Field(description="Labels selecting the flavor's nodes.")
    gpus: int = Field(ge=0, description="GPUs on the flavor's nodes (for reports, not quota).")


class Kueue(StrictModel):
    """Kueue with Topology Aware Scheduling over the plan's labels."""

    chart: Chart
    api_version: str
    topology_name: str
    levels: list[str] = Field(description="Node label of each level, coarsest first.")
    flavors: list[KueueFlavor] = Field(description="One per GPU node group.")


class Monitoring(StrictModel):
    """PrometheusRule alerting on Xid, ECC double-bit errors and IB links down."""

    namespace: str
    rule_labels: dict[str, str] = Field(default_factory=dict,
                                        description="Labels the Prometheus ruleSelector wants.")
    hca_devices: list[str] = Field(description="Compute HCA devices watched for link down.")
    critical_xids: list[int]


class PlatformConfig(StrictModel):
    """Everything the platform stack of one site needs; computed by ``stack_config(plan)``."""

    schema_version: int = 1
    site: str = Field(description="Site name; also the Pulumi stack name.")
    kubernetes: str | None = Field(description="Kubernetes version the site runs.")
    namespaces: list[str] = Field(description="Namespaces the stack creates.")
    planes: int = Field(ge=0, description="Planes (multi-plane) or 1; 0 without a fabric.")
    fabric_topology: str = Field(description="rail-optimized, multi-plane, fat-tree or none.")
    gpu_operator: GpuOperator
    network_operator: NetworkOperator
    kueue: Kueue
    mpi_operator: Chart
    monitoring: Monitoring
    nodes: list[NodeLabels] = Field(description="Labels and taints of every node, plan order.")
