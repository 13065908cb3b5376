"""The platform's resource graph as one typed ComponentResource (tested under Pulumi mocks).

Every value comes from ``PlatformConfig`` and the pure builders in
``provision.platform.manifests``; this module only turns them into Pulumi resources and
orders them (namespaces before releases, operators' CRDs before their custom resources).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from provision.platform import manifests as m
from provision.platform.model import Chart, PlatformConfig

COMPONENT_TYPE = "gpuctl:platform:GpuPlatform"


def _release(name: str, chart: Chart, values: dict[str, Any],
             opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart (an ``oci://`` repo is part of the chart reference)."""
    if chart.repo.startswith("oci://"):
        return k8s.helm.v3.Release(
            name, name=chart.name, chart=f"{chart.repo}/{chart.name}", version=chart.version,
            namespace=chart.namespace, values=values, opts=opts)
    return k8s.helm.v3.Release(
        name, name=chart.name, chart=chart.name, version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        namespace=chart.namespace, values=values, opts=opts)


def _custom(name: str, doc: dict[str, Any], opts: pulumi.ResourceOptions
            ) -> k8s.apiextensions.CustomResource:
    extra = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    return k8s.apiextensions.CustomResource(
        name, api_version=doc["apiVersion"], kind=doc["kind"], metadata=doc["metadata"],
        opts=opts, **extra)


class GpuPlatform(pulumi.ComponentResource):
    """Namespaces, operators (GPU, Network, Kueue, MPI), Kueue TAS objects, alert rules and
    the plan's labels and taints on every node of one site."""

    releases: dict[str, str]

    def __init__(self, name: str, cfg: PlatformConfig,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def after(*deps: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=list(deps))

        ns: dict[str, k8s.core.v1.Namespace] = {}
        for doc in m.namespaces(cfg):
            ns_name = doc["metadata"]["name"]
            ns[ns_name] = k8s.core.v1.Namespace(f"ns-{ns_name}", metadata=doc["metadata"],
                                                opts=child)

        gpu = cfg.gpu_operator
        cm_doc = m.dcgm_metrics_configmap(cfg)
        metrics = k8s.core.v1.ConfigMap("dcgm-metrics", metadata=cm_doc["metadata"],
                                        data=cm_doc["data"], opts=after(ns[gpu.chart.namespace]))
        gpu_op = _release("gpu-operator", gpu.chart, m.gpu_operator_values(cfg),
                          after(ns[gpu.chart.namespace], metrics))
        net = cfg.network_operator
        net_op = _release("network-operator", net.chart, m.network_operator_values(cfg),
                          after(ns[net.chart.namespace], gpu_op))
        kq = cfg.kueue
        kueue = _release("kueue", kq.chart, m.kueue_values(cfg), after(ns[kq.chart.namespace]))
        # No upstream Helm chart: the MPI Operator's pinned release manifest (it creates its
        # own namespace and the MPIJob CRD).
        mpi = k8s.yaml.v2.ConfigFile("mpi-operator", file=cfg.mpi_operator.repo, opts=child)

        topology = _custom("kueue-topology", m.kueue_topology(cfg), after(kueue))
        for flavor in m.kueue_resource_flavors(cfg):
            _custom(f"kueue-flavor-{flavor['metadata']['name']}", flavor, after(kueue, topology))
        _custom("gpu-alerts", m.prometheus_rule(cfg), after(ns[cfg.monitoring.namespace]))

        for n in cfg.nodes:
            spec = None
            if n.taints:
                spec = k8s.core.v1.NodeSpecPatchArgs(taints=[
                    k8s.core.v1.TaintPatchArgs(key=t.key, value=t.value, effect=t.effect)
                    for t in n.taints])
            k8s.core.v1.NodePatch(
                f"node-{n.name}",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name=n.name, labels=dict(n.labels),
                    annotations={"pulumi.com/patchForce": "true"}),
                spec=spec, opts=child)

        self.releases = {r.chart.name: r.chart.version
                         for r in (gpu, net, kq)} | {"mpi-operator": cfg.mpi_operator.version}
        self.register_outputs({"releases": self.releases, "mpi_operator": mpi.urn,
                               "network_operator": net_op.status, "nodes": len(cfg.nodes)})


def build(cfg: PlatformConfig) -> GpuPlatform:
    """The whole platform of ``cfg.site`` (the program's one call)."""
    return GpuPlatform(cfg.site, cfg)
