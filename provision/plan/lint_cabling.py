"""Lint rules about how a fabric is physically built: scalable units that are barely used.

GPU140 (warning): the nodes of a rail-optimized fabric overflow into a scalable unit that
stays mostly empty, so a few nodes buy a whole SU of leaves (and maybe more spines).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.fabric import upper_count
from provision.plan.lintbase import Finding, finding, rule


@rule
def su_overflow(ls: LoadedSite) -> Iterator[Finding]:
    """GPU140: the last scalable unit of a rail-optimized fabric is less than half full."""
    cf = ls.site.fabrics.compute
    if cf is None or cf.topology != "rail-optimized":
        return
    groups = [(gi, g) for gi, g in enumerate(ls.site.node_groups) if g.name in cf.node_groups]
    if not groups:
        return
    t = ls.catalog.nodes.get(groups[0][1].type)
    sw = ls.catalog.switches.get(cf.switch)
    if t is None or sw is None or not t.compute_hcas:
        return
    rails = len(t.compute_hcas)
    ufm_slots = math.ceil(cf.ufm_ports / rails) if cf.ufm_ports else 0
    nodes = sum(g.count for _, g in groups)
    slots = nodes + ufm_slots
    n_su = max(1, math.ceil(slots / cf.su_size))
    last = slots - (n_su - 1) * cf.su_size
    if n_su < 2 or 2 * last >= cf.su_size:
        return
    k = sw.ports
    up = min(k - cf.su_size, max(1, math.ceil(cf.su_size / cf.oversubscription)))
    spines = ""
    try:
        before, after = (upper_count(n * rails, up, k) for n in (n_su - 1, n_su))
        if after != before:
            spines = f" and spines {before} -> {after}"
    except ValueError:  # more than two tiers: the cores tell, not a spine count
        pass
    gi = groups[-1][0]
    yield finding(
        "GPU140", f"compute fabric: {nodes} nodes open scalable unit {n_su} for {last} "
        f"node(s) ({last} of its {cf.su_size} slots): {rails} more leaves{spines}",
        f"plan {nodes - last} nodes ({n_su - 1} full SUs), or keep SU {n_su} on purpose "
        "(this is a warning; lint --strict fails on it)", "node_groups", gi, "count",
        severity="warning")
