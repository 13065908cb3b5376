"""Ethernet oversubscription as an engineer reads it: for every network and switch tier with
uplinks (ToR -> aggregation, aggregation -> core, which carries cross-block and cross-hall
traffic, and with ``core: hall`` hall core -> site core, the cross-hall traffic), the worst switch's downlink bandwidth over its uplink bandwidth, each link at the
speed it runs (a node port at its NIC speed or the network's ``node_port_gbps`` mode, a
switch-to-switch link at the slower end or ``uplink_gbps``, a management port at 1 Gb/s).

``ratios`` is pure: it reads the site, catalog, fabrics and nodes the plan was built from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provision.models.catalog import Catalog
from provision.models.site import Site
from provision.plan.fabric import FabricPlan
from provision.plan.layout import Node
from provision.plan.management import MGMT_GBPS

ETHERNET = ("storage", "inband", "oob")
UPLINK = {"tor": "tor-agg", "agg": "agg-core", "core": "core-site"}
"""Link kind that is a tier's uplink (a hall core's, with ``core: hall``, to the site core)."""

TIER_LABEL = {"tor": "ToR->agg", "agg": "agg->core", "core": "core->site core"}

DEFAULT_MAX: dict[str, float | None] = {"storage": 4.0, "inband": 8.0, "oob": None}
"""Most oversubscription a tier may have when the network sets no ``max_oversubscription``.

Storage 4:1: a ToR of GPU nodes reading checkpoints and data sets at line rate still gets a
quarter of it across the aggregation (what two uplinks of a rack of four DGX give). In-band
8:1: management, image pulls and user traffic, bursty and light. Out-of-band: 1 Gb/s BMC
and management ports, no limit."""


@dataclass(frozen=True)
class TierRatio:
    """The worst switch of one tier of one network: its down- and uplink bandwidth."""

    fabric: str
    tier: str
    switch: str
    down_gbps: int
    up_gbps: int

    @property
    def ratio(self) -> float:
        return self.down_gbps / self.up_gbps


def limit(site: Site, fabric: str) -> float | None:
    """The most oversubscription a tier of ``fabric`` may have (site's, else the default)."""
    cfg = getattr(site.fabrics, fabric, None)
    if cfg is not None and cfg.max_oversubscription is not None:
        return float(cfg.max_oversubscription)
    return DEFAULT_MAX.get(fabric)


def ratios(site: Site, catalog: Catalog, fabrics: Mapping[str, FabricPlan],
           nodes: Sequence[Node]) -> list[TierRatio]:
    """Per Ethernet network and tier with uplinks, the switch with the highest ratio."""
    by_name = {n.name: n for n in nodes}
    out: list[TierRatio] = []
    for fname in ETHERNET:
        fab, cfg = fabrics.get(fname), getattr(site.fabrics, fname, None)
        if fab is None or cfg is None:
            continue
        speed = {s.name: catalog.switches[s.model].speed_gbps for s in fab.switches}
        tier = {s.name: s.tier for s in fab.switches}
        down: dict[str, int] = {}
        up: dict[str, int] = {}
        for lk in fab.links:
            if lk.kind == "node-tor":
                n = by_name[lk.a]
                t = catalog.nodes[n.type]
                mode = cfg.node_port_gbps
                g = (mode if isinstance(mode, int) else mode.get(n.group)) if mode else None
                nic = {"oob": 1, "inband": t.inband_nic_gbps,
                       "storage": t.storage_nic_gbps}[fname]
                gbps = g if g is not None else min(nic, speed[lk.b])
            elif lk.a in speed and lk.b in speed and lk.kind in UPLINK.values():
                gbps = (cfg.uplink_gbps if lk.kind == "tor-agg" and cfg.uplink_gbps
                        else min(speed[lk.a], speed[lk.b]))
                up[lk.a] = up.get(lk.a, 0) + gbps
            else:  # a management port (a switch's, an appliance's, a PDU's)
                gbps = MGMT_GBPS
            down[lk.b] = down.get(lk.b, 0) + gbps
        worst: dict[str, TierRatio] = {}
        for name, u in up.items():
            r = TierRatio(fname, tier[name], name, down.get(name, 0), u)
            w = worst.get(r.tier)
            if w is None or r.ratio > w.ratio:
                worst[r.tier] = r
        out += [worst[t] for t in UPLINK if t in worst]
    return out


def ratio_text(r: float) -> str:
    """``4:1``, ``2.5:1``."""
    return f"{r:.2f}".rstrip("0").rstrip(".") + ":1"
