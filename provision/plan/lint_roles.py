"""Lint rules on node roles: what a node group's role says against what its type has.

GPU128: a node group with role ``gpu`` whose catalog type has no GPUs (a storage or service
server left at the default role: it would be labelled and scheduled as a GPU node).
GPU129: a node group without compute-fabric HCAs attached to an InfiniBand fabric.
"""

from __future__ import annotations

from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.lint_fabrics import ib_sections
from provision.plan.lintbase import Finding, finding, rule


@rule
def role_matches_type(ls: LoadedSite) -> Iterator[Finding]:
    for gi, g in enumerate(ls.site.node_groups):
        t = ls.catalog.nodes.get(g.type)
        if t is not None and g.role == "gpu" and not t.gpus:
            yield finding("GPU128", f"node group {g.name} has role gpu but {t.name} has no "
                          "GPUs", "set role: storage, mgmt or head, or use a node type with GPUs",
                          "node_groups", gi, "role", subject=g.name)


@rule
def fabric_groups_have_hcas(ls: LoadedSite) -> Iterator[Finding]:
    types = {g.name: ls.catalog.nodes.get(g.type) for g in ls.site.node_groups}
    for name, loc, cf in ib_sections(ls):
        for gi, group in enumerate(cf.node_groups):
            t = types.get(group)
            if t is not None and not t.compute_hcas:
                yield finding("GPU129", f"node group {group} ({t.name}) is on InfiniBand "
                              f"fabric {name} but has no compute-fabric HCAs",
                              f"remove {group} from the fabric's node_groups",
                              *loc, "node_groups", gi, subject=group)
