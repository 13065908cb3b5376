"""Lint rules about how a fabric is physically built: scalable units that are barely used,
links whose two ends run at different speeds.

GPU140 (warning): the nodes of a rail-optimized fabric overflow into a scalable unit that
stays mostly empty, so a few nodes buy a whole SU of leaves (and maybe more spines).
GPU142: link ends differ in speed and no port mode (``node_port_gbps``/``uplink_gbps``)
says which, or an InfiniBand fabric runs faster than its HCAs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from provision.loader import LoadedSite
from provision.models.catalog import SPEED_GBPS
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


NIC_SPEED = {"storage": ("storage_nics", "storage_nic_gbps"),
             "inband": ("inband_nics", "inband_nic_gbps")}


@rule
def link_speeds(ls: LoadedSite) -> Iterator[Finding]:
    """GPU142: the two ends of a link run at different speeds and no port mode says which
    (200G NICs into 100G ToR ports; a 100G ToR under an 800G aggregation switch; HCAs slower
    than the InfiniBand fabric)."""
    site, cat = ls.site, ls.catalog
    for name, (count_attr, gbps_attr) in NIC_SPEED.items():
        ef = getattr(site.fabrics, name)
        tor = cat.switches.get(ef.switch) if ef is not None else None
        if ef is None or tor is None or tor.technology != "ethernet":  # GPU146 says why
            continue
        modes = ef.node_port_gbps
        names = [g.name for g in site.node_groups]
        if isinstance(modes, dict):
            for key in modes:
                if key not in names:
                    yield finding("GPU122", f"{name} fabric node_port_gbps names unknown node "
                                  f"group {key!r}", f"use one of {', '.join(names)}",
                                  "fabrics", name, "node_port_gbps", key)
        seen: set[tuple[str, int]] = set()
        for g in site.node_groups:
            t = cat.nodes.get(g.type)
            if t is None or not getattr(t, count_attr):
                continue
            nic = int(getattr(t, gbps_attr))
            mode = modes.get(g.name) if isinstance(modes, dict) else modes
            if mode is None and nic != tor.speed_gbps and (t.name, nic) not in seen:
                seen.add((t.name, nic))
                yield finding(
                    "GPU142", f"{name} fabric: {t.name} has {nic}G {name} ports but {tor.name} "
                    f"ToR ports run {tor.speed_gbps}G; no port mode is chosen, so the link "
                    "ends and the cable disagree", f"set fabrics.{name}.node_port_gbps: "
                    f"{min(nic, tor.speed_gbps)} (or {{{g.name}: {min(nic, tor.speed_gbps)}}} "
                    f"for this group alone, or use a ToR with {nic}G ports)",
                    "fabrics", name, "switch", subject=t.name)
            elif mode is not None and mode > min(nic, tor.speed_gbps):
                yield finding(
                    "GPU142", f"{name} fabric: node_port_gbps {mode} is faster than {t.name}'s "
                    f"{nic}G ports or the {tor.speed_gbps}G {tor.name} ports",
                    f"use at most {min(nic, tor.speed_gbps)}",
                    "fabrics", name, "node_port_gbps", subject=t.name)
        agg = cat.switches.get(ef.spine_switch) if ef.spine_switch else None
        if agg is None:
            continue
        slow = min(tor.speed_gbps, agg.speed_gbps)
        if ef.uplink_gbps is None and tor.speed_gbps != agg.speed_gbps:
            yield finding(
                "GPU142", f"{name} fabric: ToR {tor.name} runs {tor.speed_gbps}G, aggregation "
                f"{agg.name} {agg.speed_gbps}G; no uplink speed is chosen",
                f"set fabrics.{name}.uplink_gbps: {slow} (or use matching switches)",
                "fabrics", name, "spine_switch")
        elif ef.uplink_gbps is not None and ef.uplink_gbps > slow:
            yield finding("GPU142", f"{name} fabric: uplink_gbps {ef.uplink_gbps} is faster "
                          f"than the {slow}G end", f"use at most {slow}",
                          "fabrics", name, "uplink_gbps")
    for fname, cf in site.fabrics.ib().items():
        rate = SPEED_GBPS[cf.speed]
        for gi, g in enumerate(site.node_groups):
            t = cat.nodes.get(g.type)
            if t is None or g.name not in cf.node_groups:
                continue
            slower = sorted({str(h.speed) for h in t.compute_hcas
                             if SPEED_GBPS[h.speed] < rate})
            if slower:
                yield finding(
                    "GPU142", f"{fname} fabric runs {cf.speed} but {t.name}'s HCAs run at most "
                    f"{'/'.join(slower)}", f"set speed: {slower[0]} for this fabric, or attach "
                    "nodes whose HCAs run its speed", "node_groups", gi, "type")
