"""Ethernet fabrics: storage, in-band and out-of-band, one or more ToRs per rack.

With a ``spine_switch`` the ToRs uplink to aggregation pairs, one pair per block of ToRs; a
block never spans two halls (each hall has its own aggregation, placed in that hall's
network racks). Every aggregation switch keeps its top ``core_uplinks`` ports (the site's,
default ``CORE_UPLINKS``; half to each core switch) for the core pair; a fabric with more
than one block gets that pair (the halls' or blocks' aggregation joined into one network),
placed near the first block.

With ``core: hall`` (sites of many halls, where one pair has too few ports for every block)
each hall gets its own core pair (tier ``core``) joining that hall's blocks, placed in the
hall's network racks, and a site core pair (tier ``site-core``) joins the hall cores, each
hall core's top ``core_uplinks`` ports half to each site core. Block numbers are keyed by
position as before; each hall keeps the number before its first block for its core pair,
so its name, ports and address never move when a block or hall is added.
"""

from __future__ import annotations

from collections.abc import Sequence

from provision.errors import PlanError
from provision.models.catalog import Catalog
from provision.models.site import EthernetFabric
from provision.plan.fabric import FabricPlan, Link, Switch
from provision.plan.layout import Node

TOR_UPLINKS = 2
"""Uplinks from each ToR to the aggregation layer (one per aggregation switch pair)."""

CORE_UPLINKS = 2
"""Default uplinks from each aggregation switch to the core pair (one per core switch); the
top ports of every aggregation switch, kept free while the fabric has one block. A site
sets more with ``core_uplinks`` (the agg -> core oversubscription, see oversubscription.py)."""

CORE_SWITCHES = 2
"""Switches of the core pair."""

PREFIX = {"storage": "st", "inband": "inb", "oob": "oob"}


def node_ports(fabric: str, node: Node, catalog: Catalog, boot_interface: str) -> list[str]:
    """Names of a node's ports on an Ethernet fabric (``boot_interface`` is in-band port 0)."""
    ntype = catalog.nodes[node.type]
    if fabric == "oob":
        return ["bmc"] if ntype.bmc else []
    if fabric == "inband":
        return [boot_interface] + [f"inb{i}" for i in range(1, ntype.inband_nics)]
    return [f"stor{i}" for i in range(ntype.storage_nics)]


def build_ethernet(name: str, cfg: EthernetFabric, nodes: Sequence[Node], catalog: Catalog,
                   boot_interfaces: dict[str, str],
                   extra_racks: Sequence[str] = (),
                   positions: dict[str, int] | None = None,
                   hall_positions: int = 0) -> FabricPlan:
    """ToRs in every rack that holds nodes (and in ``extra_racks``, the network racks the OOB
    network reaches); optional aggregation switches above them, and a core pair above those
    when there is more than one aggregation block.

    With ``positions`` (rack -> floor grid key, see plan.addressing.floor_grid) a ToR's
    aggregation block and downlink port are keyed by its rack's position, so a rack added
    anywhere takes ports nobody holds; ``hall_positions`` (grid keys per hall) starts every
    hall in a block of its own. Without, ToRs fill blocks in rack order."""
    tor_model = catalog.switches.get(cfg.switch)
    if tor_model is None:
        raise PlanError(f"{name} fabric references unknown switch type {cfg.switch!r}")
    fab = FabricPlan(name, "leaf-spine" if cfg.spine_switch else "tor", 1)
    prefix = PREFIX[name]
    by_rack: dict[str, list[Node]] = {}
    for n in nodes:
        by_rack.setdefault(n.rack, []).append(n)
    for rack in extra_racks:
        by_rack.setdefault(rack, [])
    tors: list[Switch] = []
    up = TOR_UPLINKS if cfg.spine_switch else 0
    for rack, rack_nodes in by_rack.items():
        rack_tors = [Switch(f"{prefix}-{rack}-{i + 1}", tor_model.name, name, "tor", rack=rack)
                     for i in range(cfg.per_rack)]
        if not rack_tors:
            continue
        tors.extend(rack_tors)
        next_port = [1] * len(rack_tors)
        for n in rack_nodes:
            for j, port in enumerate(node_ports(name, n, catalog, boot_interfaces[n.group])):
                t = j % len(rack_tors)
                fab.links.append(Link(name, "node-tor", n.name, port, rack_tors[t].name,
                                      str(next_port[t])))
                next_port[t] += 1
                fab.endpoints += 1
        if max(next_port) - 1 > tor_model.ports - up:
            raise PlanError(f"{name} fabric: rack {rack} needs {max(next_port) - 1} ToR ports, "
                            f"{tor_model.name} has {tor_model.ports - up} for hosts")
    fab.switches.extend(tors)
    if cfg.spine_switch and tors:
        agg_model = catalog.switches.get(cfg.spine_switch)
        if agg_model is None:
            raise PlanError(f"{name} fabric references unknown switch type {cfg.spine_switch!r}")
        # Each block of `size` ToRs gets its own pair of aggregation switches; the pairs
        # of all blocks uplink to one core pair.
        fab.tiers = 2
        k = cfg.core_uplinks
        size = agg_model.ports - k
        if size < 1:
            raise PlanError(f"{name} fabric: aggregation switch {agg_model.name} has "
                            f"{agg_model.ports} ports, too few for ToRs and {k} "
                            "core uplinks")
        per_hall = -(-hall_positions * cfg.per_rack // size) if hall_positions else 0
        # core: hall keeps block number 1 of each hall (0-based hall * stride + 1) for the
        # hall's core pair; its blocks follow.
        by_hall = cfg.core == "hall"
        stride = per_hall + 1 if by_hall and per_hall else per_hall
        if positions is None:
            keys = [(0, k) for k in range(len(tors))]
        else:
            seen: dict[str, int] = {}
            keys = []
            for tor in tors:
                i = seen[tor.rack] = seen.get(tor.rack, -1) + 1
                pos = positions[tor.rack]
                hall, pos = divmod(pos, hall_positions) if hall_positions else (0, pos)
                keys.append((hall, pos * cfg.per_rack + i))
        blocks: dict[int, list[tuple[int, Switch]]] = {}
        for (hall, key), tor in zip(keys, tors, strict=True):
            blocks.setdefault(hall * stride + by_hall + key // size, []).append((key % size, tor))
        tops: list[Switch] = []
        for b in sorted(blocks):
            aggs = [Switch(f"{prefix}-agg{b + 1:02d}-{j + 1}", agg_model.name, name, "agg",
                           pod=b + 1) for j in range(up)]
            fab.switches.extend(aggs)
            tops.extend(aggs)
            for slot, tor in blocks[b]:
                for u in range(up):
                    fab.links.append(Link(name, "tor-agg", tor.name,
                                          str(tor_model.ports - up + 1 + u), aggs[u].name,
                                          str(slot + 1)))
        if len(blocks) > 1:
            core_name = cfg.core_switch or agg_model.name
            core_model = catalog.switches.get(core_name)
            if core_model is None:
                raise PlanError(f"{name} fabric references unknown switch type {core_name!r} "
                                f"(fabrics.{name}.core_switch)")
            if by_hall:
                _add_hall_cores(fab, name, prefix, core_model.name, core_model.ports, tops, k,
                                stride, agg_model.ports)
            else:
                _add_core(fab, name, prefix, core_model.name, core_model.ports, tops, k,
                          agg_model.ports)
    return fab


def _uplinks(name: str, kind: str, lower: Switch, uppers: Sequence[Switch], base: int,
             per: int, top: int, room: int, too_few: str, fix: str) -> list[Link]:
    """``per`` links from ``lower`` to each of ``uppers``: the lower's top ports from ``top``
    on (``per`` for each upper in turn) to the block of ``per`` ports after ``base`` on every
    upper, keyed by the lower's place so one added later takes ports nobody holds. An upper
    has ``room`` ports for lowers; past it, ``PlanError(too_few, hint=fix)``."""
    if base + per > room:
        raise PlanError(too_few, hint=fix)
    return [Link(name, kind, lower.name, str(top + u * per + m), upper.name, str(base + m + 1))
            for u, upper in enumerate(uppers) for m in range(per)]


def _member(switch: Switch) -> int:
    """0-based place of a switch in its pair (``oob-agg03-2`` -> 1)."""
    return int(switch.name.rsplit("-", 1)[1]) - 1


def _add_core(fab: FabricPlan, name: str, prefix: str, model: str, ports: int,
              aggs: Sequence[Switch], k: int, agg_ports: int) -> None:
    """The core pair joining every aggregation block: each aggregation switch's top ``k``
    (of its ``agg_ports``) go to the cores (half to each), on core ports keyed by its block
    (a block added later takes ports nobody holds)."""
    fab.tiers = 3
    cores = [Switch(f"{prefix}-core-{j + 1}", model, name, "core") for j in range(CORE_SWITCHES)]
    fab.switches.extend(cores)
    per = k // CORE_SWITCHES
    for agg in aggs:
        assert agg.pod is not None
        fab.links.extend(_uplinks(
            name, "agg-core", agg, cores, ((agg.pod - 1) * TOR_UPLINKS + _member(agg)) * per,
            per, agg_ports - k + 1, ports,
            f"{name} fabric: core switch {model} has {ports} ports, too few for aggregation "
            f"switch {agg.name} (block {agg.pod})",
            f"set fabrics.{name}.core: hall (a core pair per hall) or a larger "
            f"fabrics.{name}.core_switch"))


def _add_hall_cores(fab: FabricPlan, name: str, prefix: str, model: str, ports: int,
                    aggs: Sequence[Switch], k: int, stride: int, agg_ports: int) -> None:
    """``core: hall``: a core pair per hall with aggregation (block number ``hall * stride
    + 1``), each aggregation switch's top ``k`` ports to its hall's pair on ports keyed by
    the block's place in the hall; and, with more than one hall, a site core pair taking
    each hall core's top ``k`` ports on ports keyed by the hall. ``stride`` 0: one hall;
    ``agg_ports``: the aggregation switches' ports (the hall cores have ``ports``)."""
    fab.tiers = 3
    per = k // CORE_SWITCHES
    halls: dict[int, list[Switch]] = {}
    for agg in aggs:
        assert agg.pod is not None
        halls.setdefault((agg.pod - 1) // stride if stride else 0, []).append(agg)
    hall_cores: list[tuple[int, Switch]] = []
    links: list[Link] = []
    for hall, members in halls.items():
        pod = hall * stride + 1
        cores = [Switch(f"{prefix}-core{pod:02d}-{j + 1}", model, name, "core", pod=pod)
                 for j in range(CORE_SWITCHES)]
        fab.switches.extend(cores)
        hall_cores += [(hall, c) for c in cores]
        for agg in members:
            assert agg.pod is not None
            links += _uplinks(
                name, "agg-core", agg, cores,
                ((agg.pod - pod - 1) * TOR_UPLINKS + _member(agg)) * per, per,
                agg_ports - k + 1, ports - k,
                f"{name} fabric: hall core switch {model} has {ports} ports ({k} to the site "
                f"core), too few for aggregation switch {agg.name} (block {agg.pod})",
                f"set a larger fabrics.{name}.core_switch")
    if len(halls) > 1:
        fab.tiers = 4
        tops = [Switch(f"{prefix}-core-{j + 1}", model, name, "site-core")
                for j in range(CORE_SWITCHES)]
        fab.switches.extend(tops)
        for hall, core in hall_cores:
            links += _uplinks(
                name, "core-site", core, tops, (hall * CORE_SWITCHES + _member(core)) * per,
                per, ports - k + 1, ports,
                f"{name} fabric: site core switch {model} has {ports} ports, too few for hall "
                f"core switch {core.name}", f"set a larger fabrics.{name}.core_switch")
    fab.links.extend(links)
