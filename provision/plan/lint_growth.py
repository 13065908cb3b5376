"""Lint rules about growth: a fabric grown past the size it was designed for.

GPU150 (warning): the nodes on an InfiniBand fabric exceed its ``design`` capacity, so the
plan sizes the upper tiers for what is declared instead: spines or cores are added and
leaf-spine cables re-terminated, which a built site cannot take without downtime.
"""

from __future__ import annotations

from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.growth import design_nodes
from provision.plan.lintbase import Finding, finding, rule


@rule
def past_design_capacity(ls: LoadedSite) -> Iterator[Finding]:
    """GPU150: more nodes on a fabric than its design capacity holds."""
    for fname, cf in ls.site.fabrics.ib().items():
        if cf.design is None:
            continue
        groups = [g for g in ls.site.node_groups if g.name in cf.node_groups]
        t = ls.catalog.nodes.get(groups[0].type) if groups else None
        if t is None or not t.compute_hcas:
            continue
        cap = design_nodes(cf, len(t.compute_hcas))
        nodes = sum(g.count for g in groups)
        if nodes <= cap:
            continue
        loc = (("fabrics", "compute") if fname == "compute"
               else ("fabrics", "infiniband", fname))
        what = (f"{cf.design.sus} SUs" if cf.design.sus is not None
                else f"{cf.design.endpoints} endpoints")
        yield finding(
            "GPU150", f"{fname} fabric: {nodes} nodes exceed its design capacity of {what} "
            f"({cap} nodes); the upper tiers are planned for {nodes} instead, which re-cables "
            "the built spines", "raise design (planning the upper tiers for the new final "
            "size) or keep this on purpose (a warning; lint --strict fails on it)",
            *loc, "design", severity="warning")
