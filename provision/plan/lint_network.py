"""Lint rules about the Ethernet networks: the right kind of switch, and an out-of-band
network that actually reaches every BMC and every rack."""

from __future__ import annotations

from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.plan.lintbase import Finding, finding, placed_nodes, rule

ETHERNET = ("storage", "inband", "oob")


@rule
def ethernet_switch_kind(ls: LoadedSite) -> Iterator[Finding]:
    """GPU146: an InfiniBand switch model named as an Ethernet ToR or aggregation switch."""
    eth = sorted(n for n, s in ls.catalog.switches.items() if s.technology == "ethernet")
    for name in ETHERNET:
        fab = getattr(ls.site.fabrics, name)
        if fab is None:
            continue
        for attr, what in (("switch", "ToR"), ("spine_switch", "aggregation switch")):
            sku = getattr(fab, attr)
            sw = ls.catalog.switches.get(sku) if sku else None
            if sw is not None and sw.technology != "ethernet":
                yield finding(
                    "GPU146", f"{name} fabric: {sku} ({sw.model}) is an {sw.technology} "
                    f"switch, it cannot be the {what} of an Ethernet network",
                    f"use an Ethernet switch: {', '.join(eth)}", "fabrics", name, attr)


@rule
def oob_reach(ls: LoadedSite) -> Iterator[Finding]:
    """GPU145: BMCs without an OOB switch, or OOB ToRs in several racks with no uplinks."""
    site, cat = ls.site, ls.catalog
    nodes = placed_nodes(ls)
    if nodes is None:
        return
    bmcs = [n for n in nodes if cat.nodes[n.type].bmc]
    oob = site.fabrics.oob
    if not bmcs:
        return
    if oob is None:
        yield finding("GPU145", f"no oob fabric: the BMCs of {len(bmcs)} nodes are not cabled, "
                      "so nothing can power, boot or reimage them", "add fabrics.oob with a "
                      "1G management switch per rack (e.g. switch: mgmt-1g-48)", "fabrics")
        return
    if oob.per_rack == 0:
        yield finding("GPU145", f"oob per_rack: 0 leaves the BMCs of {len(bmcs)} nodes "
                      "uncabled, so nothing can power, boot or reimage them",
                      "set per_rack: 1 (or 2 for redundant management)",
                      "fabrics", "oob", "per_rack")
        return
    racks = sorted({n.rack for n in bmcs})
    if len(racks) > 1 and oob.spine_switch is None:
        shown = ", ".join(racks[:3]) + (", ..." if len(racks) > 3 else "")
        yield finding("GPU145", f"oob fabric has ToRs in {len(racks)} racks ({shown}) but no "
                      "spine_switch: the racks' management switches have no uplinks, so no "
                      "BMC is reachable from the provisioning network",
                      "set fabrics.oob.spine_switch (e.g. sn2201) and network_racks",
                      "fabrics", "oob")
