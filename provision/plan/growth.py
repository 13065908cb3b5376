"""Design capacity: a fabric planned for its final size and installed as the site grows.

The upper tiers are sized for ``fabrics.<ib>.design`` (scalable units or endpoints), so their
switches, rack units, power, addresses and cables never change while nodes are added up to
that size. The fabric is built for the design's node count — the nodes not declared yet
take the slots the site's rows give them (so leaves sit where they will be needed) — and
what no declared node needs is *future* (see plan.fabric.split_future).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from provision.errors import PlanError
from provision.models.catalog import Catalog
from provision.models.site import ComputeFabric, Site
from provision.plan.fabric import FabricPlan, Switch
from provision.plan.layout import Node, Rack, place_nodes


def design_nodes(cf: ComputeFabric, hcas: int) -> int:
    """Nodes the fabric holds at its design capacity (0 without one)."""
    if cf.design is None or hcas <= 0:
        return 0
    if cf.design.sus is not None:
        ufm_slots = math.ceil(cf.ufm_ports / hcas) if cf.ufm_ports else 0
        return cf.design.sus * cf.su_size - ufm_slots
    endpoints = cf.design.endpoints or 0
    if cf.topology == "rail-optimized":
        endpoints -= cf.ufm_ports
    return max(0, math.ceil(endpoints / hcas))


def grown_group(site: Site, catalog: Catalog, racks: list[Rack], group: str,
                more: int) -> list[Node] | None:
    """The nodes of ``group`` placed with ``more`` of them, or None when its rows cannot
    hold that many."""
    groups = [g.model_copy(update={"count": g.count + more}) if g.name == group else g
              for g in site.node_groups]
    try:
        placed = place_nodes(site.model_copy(update={"node_groups": groups}), catalog, racks)
    except PlanError:
        return None
    return [n for n in placed if n.group == group]


def design_members(site: Site, catalog: Catalog, cf: ComputeFabric, members: list[Node],
                   racks: list[Rack]) -> list[Node]:
    """The fabric's nodes at design capacity: ``members`` and then the nodes the fabric's last
    group would get next (in the slots its rows offer, else stacked in its last rack).
    Past the design capacity, just ``members``."""
    if not members:
        return members
    want = design_nodes(cf, len(catalog.nodes[members[0].type].compute_hcas))
    more = want - len(members)
    if more <= 0:
        return members
    last = members[-1]
    placed = grown_group(site, catalog, racks, last.group, more)
    extra = placed[last.index:] if placed is not None else []
    if len(extra) < more:  # the rows do not hold the design yet: anchor at the last rack
        extra += [dataclasses.replace(last, name=f"{last.group}.design-{i + 1}",
                                      index=last.index + len(extra) + i + 1)
                  for i in range(more - len(extra))]
    return members + [dataclasses.replace(n, name=f"{n.name}.design") for n in extra]


def design_switches(fab: FabricPlan) -> Sequence[Switch]:
    """Built and future switches of ``fab`` in design order."""
    if not fab.future_switches:
        return fab.switches
    by_name = {s.name: s for s in fab.switches}
    by_name.update((s.name, s) for s in fab.future_switches)
    return [by_name[n] for n in fab.design_order]
