"""Topology facts several renderers share, read from the Plan's InfiniBand links (never
re-derived); a site with several InfiniBand fabrics has one tree per fabric.

* a node's **block**: the group of nodes one hop apart on the fabric. Rail-optimized: its
  scalable unit (``su01``; every rail leaf of an SU holds the same nodes). Other fat trees:
  the leaf holding most of its HCAs (plane 0's leaf on a multi-plane fabric, every plane
  being wired alike).
* a block's **spine**: the switch group above it (``pod01`` in a 3-tier fabric, else the
  fabric's single spine layer, named after the site).
* Slurm-style host lists (``dgx-[001-031,033]``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import netaddr

from provision.plan.build import Plan

_NUM_RE = re.compile(r"^(.*?)(\d+)$")


@dataclass
class Topology:
    """Per-node fabric placement (only nodes attached to an InfiniBand fabric appear)."""

    block: dict[str, str] = field(default_factory=dict)
    spine: dict[str, str] = field(default_factory=dict)
    rails: dict[str, list[tuple[int, str, str, str]]] = field(default_factory=dict)
    """node -> [(rail/plane, HCA device, leaf, leaf port)] in rail order."""
    blocks: dict[str, list[str]] = field(default_factory=dict)
    """block -> node names in plan order."""
    spine_blocks: dict[str, list[str]] = field(default_factory=dict)
    """spine group -> blocks in first-seen order."""
    roots: dict[str, list[str]] = field(default_factory=dict)
    """Each InfiniBand fabric's root -> its spine groups (the root itself when it has no
    pods), compute fabric first."""
    top: str = ""
    """The first fabric's root."""


def topology(plan: Plan) -> Topology:
    """Blocks and spine groups of every InfiniBand-attached node. Built on every call: the
    renderers that share it get it passed in (:func:`provision.render.artifacts.render_artifacts`
    builds it once)."""
    topo = Topology()
    for name in plan.ib_names():
        _add_fabric(plan, name, topo)
    if topo.roots:
        topo.top = next(iter(topo.roots))
    return topo


def _add_fabric(plan: Plan, name: str, topo: Topology) -> None:
    """Blocks and spine groups of one InfiniBand fabric. A further fabric's SU and pod names
    carry its name (``zone2-su01``) and it has a root of its own (``<site>-ib-zone2``): jobs
    never span two fabrics."""
    fab = plan.fabrics[name]
    tag = "" if name == "compute" else f"{name}-"
    sw = {s.name: s for s in fab.switches}
    rail_opt = fab.topology == "rail-optimized"
    leaf_pod: dict[str, int] = {}
    rails: dict[str, list[tuple[int, str, str, str]]] = {}
    for lk in fab.links:
        if lk.kind == "leaf-spine" and sw[lk.b].pod is not None:
            leaf_pod[lk.a] = sw[lk.b].pod or 0
        elif lk.kind == "node-leaf":
            rail = lk.plane if lk.plane is not None else (lk.rail or 0)
            rails.setdefault(lk.a, []).append((rail, lk.a_port, lk.b, lk.b_port))
    topo.rails.update(rails)
    top = f"{plan.site.site.name}-ib" + (f"-{name}" if tag else "")
    seen: dict[str, dict[str, None]] = {}
    for node in plan.nodes:
        links = rails.get(node.name)
        if not links:
            continue
        links.sort()
        leaf_sw = sw[links[0][2]]
        if rail_opt and leaf_sw.su is not None:
            block = f"{tag}su{leaf_sw.su:02d}"
        else:
            first_plane = [lk for lk in links if lk[0] == links[0][0]]
            counts = Counter(lk[2] for lk in (first_plane if fab.topology == "multi-plane"
                                              else links))
            block = max(counts, key=counts.__getitem__)  # ties: the lowest rail's leaf
        pod = leaf_pod.get(sw[links[0][2]].name)
        spine = f"{tag}pod{pod:02d}" if pod is not None else top
        topo.block[node.name] = block
        topo.spine[node.name] = spine
        topo.blocks.setdefault(block, []).append(node.name)
        seen.setdefault(spine, {})[block] = None
    if seen:
        topo.spine_blocks.update({spine: list(blocks) for spine, blocks in seen.items()})
        topo.roots[top] = list(seen)


def hostlist(names: Iterable[str]) -> str:
    """Compress host names to Slurm's bracket form, keeping first-seen prefix order."""
    groups: dict[tuple[str, int], list[int]] = {}
    plain: list[str] = []
    order: list[tuple[str, int] | str] = []
    for name in names:
        m = _NUM_RE.match(name)
        if m is None:
            plain.append(name)
            order.append(name)
            continue
        key = (m.group(1), len(m.group(2)))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(int(m.group(2)))
    out: list[str] = []
    for item in order:
        if isinstance(item, str):
            out.append(item)
            continue
        prefix, width = item
        nums = sorted(set(groups[item]))
        if len(nums) == 1:
            out.append(f"{prefix}{nums[0]:0{width}d}")
            continue
        ranges: list[str] = []
        start = prev = nums[0]
        for n in [*nums[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            ranges.append(f"{start:0{width}d}" if start == prev
                          else f"{start:0{width}d}-{prev:0{width}d}")
            if n is not None:
                start = prev = n
        out.append(f"{prefix}[{','.join(ranges)}]")
    return ",".join(out)


def services_address(plan: Plan) -> str:
    """Where provisioning services (DHCP/TFTP/HTTP boot, DNS) answer: the in-band address of
    the first mgmt/head node when the site has one, else the first service address (network
    + 2, inside the reserved low range) of the first in-band subnet."""
    for node in plan.nodes:
        if node.role in ("mgmt", "head"):
            inband = [a for a in plan.addresses_of(node.name) if a.pool == "inband"]
            if inband:
                return inband[0].address
    first = next(s for s in plan.subnets if s.pool == "inband")
    return str(netaddr.IPNetwork(first.cidr)[2])
