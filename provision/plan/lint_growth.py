"""Lint rules about growth: a fabric grown past the size it was designed for.

GPU150 (warning): the nodes on an InfiniBand fabric exceed its ``design`` capacity, so the
plan sizes the upper tiers for what is declared instead: spines or cores are added and
leaf-spine cables re-terminated, which a built site cannot take without downtime.

GPU154 (warning): the rows of a fabric's last node group do not hold its design capacity,
so the future leaves have no racks to sit near yet; when the rows are declared they move,
and switches placed after them (spines, cores) may move too.
"""

from __future__ import annotations

from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.growth import design_nodes, grown_group
from provision.plan.layout import layout_racks
from provision.plan.lintbase import Finding, finding, rule


@rule
def past_design_capacity(ls: LoadedSite) -> Iterator[Finding]:
    """GPU150: more nodes on a fabric than its design capacity holds; GPU154: the layout
    does not hold the design capacity yet."""
    for fname, cf in ls.site.fabrics.ib().items():
        if cf.design is None:
            continue
        groups = [g for g in ls.site.node_groups if g.name in cf.node_groups]
        t = ls.catalog.nodes.get(groups[0].type) if groups else None
        if t is None or not t.compute_hcas:
            continue
        cap = design_nodes(cf, len(t.compute_hcas))
        nodes = sum(g.count for g in groups)
        loc = (("fabrics", "compute") if fname == "compute"
               else ("fabrics", "infiniband", fname))
        if nodes < cap and grown_group(ls.site, ls.catalog, layout_racks(ls.site),
                                       groups[-1].name, cap - nodes) is None:
            yield finding(
                "GPU154", f"{fname} fabric: the rows of node group {groups[-1].name} do not "
                f"hold its design capacity ({cap} nodes, {nodes} declared); future leaves "
                "have no racks to sit near and move when the rows are added",
                f"declare the racks of the final size in rows "
                f"{', '.join(groups[-1].placement.rows)} now (empty racks cost nothing)",
                *loc, "design", severity="warning")
        if nodes <= cap:
            continue
        what = (f"{cf.design.sus} SUs" if cf.design.sus is not None
                else f"{cf.design.endpoints} endpoints")
        yield finding(
            "GPU150", f"{fname} fabric: {nodes} nodes exceed its design capacity of {what} "
            f"({cap} nodes); the upper tiers are planned for {nodes} instead, which re-cables "
            "the built spines", "raise design (planning the upper tiers for the new final "
            "size) or keep this on purpose (a warning; lint --strict fails on it)",
            *loc, "design", severity="warning")
