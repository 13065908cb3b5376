"""IP plan: addresses keyed by position, so growth anywhere never renumbers what is built.

Every rack position of the floor grid (``addressing.capacity``: hall in file order, row in
its hall's order, rack index in its row) owns a fixed block of each pool, whether the rack is
built, empty or not declared yet; inside a rack a host's address is keyed by its U. So a
rack, a row, a hall or an SU added anywhere takes addresses nobody holds:

* oob / inband / storage: one subnet per rack at ``pool + grid * size``; interface j of the
  host at U u is host ``RESERVED_LOW + 1 + j * rack_units + (u - 1)`` (PDUs after the BMCs;
  oob and inband keep ``capacity.dhcp_free`` more at the end for the DHCP dynamic pool);
* IPoIB: one subnet per rail, host ``RESERVED_LOW + 1 + grid * rack_units + (u - 1)``;
* switch management: ToRs from the bottom of the pool keyed by (rack position, fabric,
  ToR index); from the top: InfiniBand fabric switches in fabric order, appliances (UFM),
  then Ethernet aggregation switches keyed by (aggregation block, index, fabric).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import netaddr

from provision.errors import PlanError
from provision.models.catalog import Catalog
from provision.models.site import Addressing, Site
from provision.plan.ethernet import CORE_SWITCHES, TOR_UPLINKS
from provision.plan.fabric import Switch
from provision.plan.layout import Node, rack_name

RESERVED_LOW = 10
"""Addresses after the network address kept for gateway, VRRP peers and services."""

ETHERNET = ("storage", "inband", "oob")
"""Ethernet fabrics in their fixed address order (a fabric added later takes its own slot)."""


@dataclass(frozen=True, slots=True)
class Subnet:
    pool: str
    name: str
    cidr: str
    gateway: str
    first_host: str
    capacity: int


@dataclass(slots=True, unsafe_hash=True)
class Address:
    """One address of a device's interface: a record, never mutated once planned. Not
    frozen because frozen construction costs 4-6x more and a GW-scale site has 200,000 of
    them; hashable and comparable by value as a frozen one is."""

    pool: str
    device: str
    interface: str
    address: str
    prefix: int
    subnet: str
    gateway: str


def ip_str(value: int) -> str:
    """Dotted quad of an integer IPv4 address (much faster than netaddr for bulk work)."""
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def prefix_for(hosts: int) -> int:
    """Smallest prefix holding ``hosts`` plus reserved, network and broadcast addresses."""
    needed = hosts + RESERVED_LOW + 2
    return 32 - max(2, math.ceil(math.log2(needed)))


def floor_grid(site: Site) -> dict[str, int]:
    """Position key of every declared rack: ``(hall * rows_per_hall + row) * racks_per_row +
    index - 1``. Raises PlanError naming the hall/row that does not fit the grid."""
    cap = site.addressing.capacity
    grid: dict[str, int] = {}
    for hi, hall in enumerate(site.halls):
        if len(hall.rows) > cap.rows_per_hall:
            raise PlanError(f"hall {hall.name}: {len(hall.rows)} rows exceed "
                            f"addressing.capacity.rows_per_hall {cap.rows_per_hall} (raising it "
                            "renumbers every later hall)")
        for ri, row in enumerate(hall.rows):
            where = f"hall {hall.name} row {row.name}"
            if row.racks > cap.racks_per_row:
                raise PlanError(f"{where}: {row.racks} racks exceed addressing.capacity."
                                f"racks_per_row {cap.racks_per_row} (raising it renumbers "
                                "every later row)")
            if row.rack.size_u > cap.rack_units:
                raise PlanError(f"{where}: {row.rack.size_u}U racks exceed addressing."
                                f"capacity.rack_units {cap.rack_units}")
            if row.rack.pdus > cap.pdus_per_rack:
                raise PlanError(f"{where}: {row.rack.pdus} PDUs per rack exceed addressing."
                                f"capacity.pdus_per_rack {cap.pdus_per_rack}")
            first = (hi * cap.rows_per_hall + ri) * cap.racks_per_row
            for i in range(1, row.racks + 1):
                grid[rack_name(row.rack_names, hall.name, row.name, i)] = first + i - 1
    return grid


def _exhausted(pool: str, net: netaddr.IPNetwork, what: str, needed: int) -> PlanError:
    prefix = 32 - math.ceil(math.log2(max(needed, 2)))
    return PlanError(f"address pool {pool} ({net}) is exhausted at {what}: the floor grid "
                     f"needs at least a /{prefix} up to there; give a bigger pool or a "
                     "smaller addressing.capacity")


def _per_rack(pool: str, cidr: str, nodes: Sequence[Node], grid: dict[str, int],
              units: int, ifaces: dict[str, list[str]], width: int, extra: int,
              subnets: list[Subnet], addresses: list[Address], free: int = 0,
              extras: Mapping[str, Sequence[str]] | None = None) -> None:
    """One subnet per rack position; a node's addresses keyed by its U, then ``extras``
    (rack -> PDU names: their ``mgmt0``) on the ``extra`` addresses after the nodes'. A rack
    with extras but no nodes (a network rack's PDUs) gets its subnet too."""
    net_all = netaddr.IPNetwork(cidr)
    hosts = units * width + extra
    size = 2 ** (32 - prefix_for(hosts + free))
    prefix = 32 - int(math.log2(size))
    by_rack: dict[str, list[Node]] = {}
    for n in nodes:
        by_rack.setdefault(n.rack, []).append(n)
    for rack in extras or {}:
        by_rack.setdefault(rack, [])
    for rack, rack_nodes in by_rack.items():
        start = int(net_all.first) + grid[rack] * size
        if start + size - 1 > net_all.last:
            raise _exhausted(pool, net_all, f"rack {rack}", (grid[rack] + 1) * size)
        cidr_s = f"{ip_str(start)}/{prefix}"
        gw = ip_str(start + 1)
        first = start + RESERVED_LOW + 1
        subnets.append(Subnet(pool, rack, cidr_s, gw, ip_str(first), hosts))
        for n in rack_nodes:
            if n.u > units:
                raise PlanError(f"node {n.name}: U {n.u} is above addressing.capacity."
                                f"rack_units {units}")
            for j, iface in enumerate(ifaces[n.name]):
                addresses.append(Address(pool, n.name, iface,
                                         ip_str(first + j * units + n.u - 1), prefix, cidr_s,
                                         gw))
        for k, name in enumerate((extras or {}).get(rack, ())):
            if k >= extra:
                raise PlanError(f"rack {rack}: PDU {name} is beyond addressing.capacity."
                                f"pdus_per_rack {extra}")
            addresses.append(Address(pool, name, "mgmt0", ip_str(first + units * width + k),
                                     prefix, cidr_s, gw))


def _rail_pools(pools: Sequence[str], rails: int, field: str = "ipoib"
                ) -> list[netaddr.IPNetwork]:
    if len(pools) == rails:
        return [netaddr.IPNetwork(c) for c in pools]
    if len(pools) == 1:
        split = 2 ** math.ceil(math.log2(rails))
        base = netaddr.IPNetwork(pools[0])
        if base.prefixlen + int(math.log2(split)) > 30:
            raise PlanError(f"address pool {field} ({base}) is too small to split into "
                            f"{rails} rail subnets")
        return list(base.subnet(base.prefixlen + int(math.log2(split))))[:rails]
    raise PlanError(f"addressing.{field} lists {len(pools)} pools; give one per "
                    f"rail/plane ({rails}) or a single pool to split")


def _switch_mgmt(a: Addressing, site: Site, switches: Sequence[Switch],
                 appliances: Sequence[str], grid: dict[str, int], subnets: list[Subnet],
                 addresses: list[Address], future: AbstractSet[str]) -> None:
    mgmt = netaddr.IPNetwork(a.switch_mgmt)
    base, last = int(mgmt.first), int(mgmt.last)
    cidr, gw = str(mgmt), ip_str(base + 1)
    per_rack = {f: getattr(site.fabrics, f).per_rack if getattr(site.fabrics, f) else 0
                for f in ETHERNET}
    offset, t = {}, 0
    for f in ETHERNET:
        offset[f], t = t, t + per_rack[f]
    tor_seen: dict[tuple[str, str], int] = {}
    fabric_ordinal = 0
    eth_ordinal = dict.fromkeys(ETHERNET, 0)
    agg_seen: dict[tuple[str, int], int] = {}
    placed: list[tuple[Switch, int]] = []
    top: list[tuple[Switch, int | None, int]] = []
    for sw in switches:
        if sw.fabric in ETHERNET and sw.tier == "tor" and sw.rack in grid:
            i = tor_seen.get((sw.fabric, sw.rack), 0)
            tor_seen[(sw.fabric, sw.rack)] = i + 1
            if i < per_rack[sw.fabric]:
                placed.append((sw, base + RESERVED_LOW + 1 + grid[sw.rack] * t
                               + offset[sw.fabric] + i))
                continue
        if sw.fabric in ETHERNET:
            if sw.pod is not None:   # aggregation block: keyed by block, then index in it
                j = agg_seen.get((sw.fabric, sw.pod), 0)
                agg_seen[(sw.fabric, sw.pod)] = j + 1
                key = CORE_SWITCHES + (sw.pod - 1) * TOR_UPLINKS + j
            elif sw.tier in ("core", "site-core"):  # the core pair (with core: hall the
                # site's; a hall's pair has the block number before its hall's first
                # block): the keys before the first block's
                key = int(sw.name.rsplit("-", 1)[1]) - 1
            else:
                key = eth_ordinal[sw.fabric]
                eth_ordinal[sw.fabric] += 1
            top.append((sw, None, key * len(ETHERNET) + ETHERNET.index(sw.fabric)))
        else:
            top.append((sw, fabric_ordinal, 0))
            fabric_ordinal += 1
    low_end = max((ip for _, ip in placed), default=base + RESERVED_LOW)
    names = [sw.name for sw, _ in placed]
    # From the top: fabric switches, then appliances, then Ethernet aggregation switches.
    tops = [(sw.name, ordinal if ordinal is not None else fabric_ordinal + len(appliances) + eth)
            for sw, ordinal, eth in top]
    tops += [(name, fabric_ordinal + i) for i, name in enumerate(appliances)]
    ips = dict(zip(names, (ip for _, ip in placed), strict=True))
    for name, idx in tops:
        ip = last - 1 - idx
        if ip <= low_end:
            raise PlanError(f"address pool switch_mgmt ({mgmt}) is exhausted at {name}: ToRs "
                            f"(by rack position) and fabric switches need {low_end - ip + 1} "
                            "more addresses")
        ips[name] = ip
    subnets.append(Subnet("switch_mgmt", "switches", cidr, gw,
                          ip_str(base + RESERVED_LOW + 1), mgmt.size - RESERVED_LOW - 2))
    for name in [sw.name for sw in switches if sw.name not in future] + list(appliances):
        addresses.append(Address("switch_mgmt", name, "mgmt0", ip_str(ips[name]),
                                 mgmt.prefixlen, cidr, gw))


def _ipoib(pools: Sequence[netaddr.IPNetwork], tag: str, members: Sequence[Node],
           grid: dict[str, int], units: int, subnets: list[Subnet],
           addresses: list[Address]) -> None:
    """One IPoIB subnet per rail (``rail0``; ``zone2-rail0`` for a further fabric), each
    node's address keyed by its floor position like every other per-node address."""
    offsets = [RESERVED_LOW + 1 + grid[n.rack] * units + n.u - 1 for n in members]
    for r, net in enumerate(pools):
        if net.size < RESERVED_LOW + 3:
            pool = f"ipoib_fabrics {tag[:-1]} rail {r}" if tag else f"ipoib rail {r}"
            raise PlanError(f"address pool {pool} ({net}) is too small: it needs more than "
                            f"its {RESERVED_LOW + 2} reserved addresses")
        subnets.append(Subnet("ipoib", f"{tag}rail{r}", str(net), "",
                              str(net[RESERVED_LOW + 1]), net.size - RESERVED_LOW - 2))
        # netaddr's properties are slow: read once per rail, not once per node
        base, cidr, last, prefix = int(net.first), str(net), net.size - 2, net.prefixlen
        iface = f"ib{r}"
        for n, offset in zip(members, offsets, strict=True):
            if offset > last:
                pool = f"ipoib_fabrics {tag[:-1]} rail {r}" if tag else f"ipoib rail {r}"
                raise _exhausted(pool, net, f"node {n.name} (rack {n.rack})", offset + 2)
            addresses.append(Address("ipoib", n.name, iface, ip_str(base + offset),
                                     prefix, cidr, ""))


def plan_addresses(site: Site, catalog: Catalog, nodes: Sequence[Node],
                   fabric_nodes: Sequence[Node], rails: int, switches: Sequence[Switch],
                   boot_ifaces: dict[str, str], appliances: Sequence[str] = (),
                   future: AbstractSet[str] = frozenset(),
                   further_ib: Mapping[str, tuple[Sequence[Node], int]] | None = None,
                   pdus: Mapping[str, Sequence[str]] | None = None,
                   ) -> tuple[list[Subnet], list[Address]]:
    """All subnets and addresses of the site; switches and then ``appliances`` get their
    management address from the switch_mgmt pool. ``switches`` lists every switch in design
    order; the ``future`` ones keep their address in reserve (no record yet). ``further_ib``:
    the nodes and rails of each further InfiniBand fabric, addressed from
    ``addressing.ipoib_fabrics[name]``. ``pdus`` (rack -> PDU names) get their rack's OOB
    addresses reserved for PDUs (``capacity.pdus_per_rack``)."""
    a: Addressing = site.addressing
    cap = a.capacity
    units = cap.rack_units
    grid = floor_grid(site)
    subnets: list[Subnet] = []
    addresses: list[Address] = []
    with_bmc = [n for n in nodes if catalog.nodes[n.type].bmc]
    _per_rack("oob", a.oob, with_bmc, grid, units, {n.name: ["bmc"] for n in with_bmc}, 1,
              cap.pdus_per_rack, subnets, addresses, cap.dhcp_free, pdus)
    _per_rack("inband", a.inband, nodes, grid, units,
              {n.name: [boot_ifaces[n.group]] for n in nodes}, 1, 0, subnets, addresses,
              cap.dhcp_free)
    if a.storage:
        st_nodes = [n for n in nodes if catalog.nodes[n.type].storage_nics]
        width = max((catalog.nodes[g.type].storage_nics for g in site.node_groups
                     if g.type in catalog.nodes), default=1) or 1
        _per_rack("storage", a.storage, st_nodes, grid, units,
                  {n.name: [f"stor{i}" for i in range(catalog.nodes[n.type].storage_nics)]
                   for n in st_nodes}, width, 0, subnets, addresses)
    if a.ipoib and rails:
        _ipoib(_rail_pools(a.ipoib, rails), "", fabric_nodes, grid, units, subnets, addresses)
    for name, (members, n_rails) in (further_ib or {}).items():
        pools = a.ipoib_fabrics.get(name)
        if pools and n_rails:
            _ipoib(_rail_pools(pools, n_rails, f"ipoib_fabrics.{name}"), f"{name}-", members,
                   grid, units, subnets, addresses)
    _switch_mgmt(a, site, switches, appliances, grid, subnets, addresses, future)
    return subnets, addresses
