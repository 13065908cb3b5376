"""IP plan: subnets carved from the site's pools, one address per interface.

Subnets are carved in a fixed order (racks in layout order, rails in rail order) and sized
from slot capacity, not from how many nodes happen to exist yet, so a site that grows at the
end never renumbers an existing host.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import netaddr

from provision.errors import PlanError
from provision.models.catalog import Catalog
from provision.models.site import Addressing, Site
from provision.plan.fabric import Switch
from provision.plan.layout import Node

RESERVED_LOW = 10
"""Addresses after the network address kept for gateway, VRRP peers and services."""


@dataclass(frozen=True, slots=True)
class Subnet:
    pool: str
    name: str
    cidr: str
    gateway: str
    first_host: str
    capacity: int


@dataclass(frozen=True, slots=True)
class Address:
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


class Carver:
    """Sequential, aligned subnet allocation inside one pool."""

    def __init__(self, name: str, cidr: str) -> None:
        self.name = name
        self.pool = netaddr.IPNetwork(cidr)
        self.cursor = int(self.pool.first)
        self.wanted = 0

    def carve(self, prefix: int) -> netaddr.IPNetwork | None:
        size = 2 ** (32 - prefix)
        start = -(-self.cursor // size) * size
        self.wanted = start + size - int(self.pool.first)
        if start + size - 1 > self.pool.last:
            return None
        self.cursor = start + size
        return netaddr.IPNetwork(f"{netaddr.IPAddress(start)}/{prefix}")

    def exhausted(self, what: str) -> PlanError:
        more = self.wanted - self.pool.size
        return PlanError(f"address pool {self.name} ({self.pool}) is exhausted carving {what}: "
                         f"needs {more} more addresses (at least a "
                         f"/{32 - math.ceil(math.log2(self.wanted))} in all)")


def rack_slots(site: Site, nodes: Sequence[Node]) -> dict[str, int]:
    """Node slots each used rack reserves (a partly filled rack still reserves all slots)."""
    slots: dict[str, int] = {}
    seen: set[tuple[str, str]] = set()
    per_rack = {g.name: g.placement.nodes_per_rack for g in site.node_groups}
    for n in nodes:
        if (n.group, n.rack) not in seen:
            seen.add((n.group, n.rack))
            slots[n.rack] = slots.get(n.rack, 0) + per_rack[n.group]
    return slots


def _per_rack(pool: str, cidr: str, nodes: Sequence[Node], slots: dict[str, int],
              per_node: dict[str, list[str]], extra: dict[str, int],
              subnets: list[Subnet], addresses: list[Address]) -> None:
    carver = Carver(pool, cidr)
    by_rack: dict[str, list[Node]] = {}
    for n in nodes:
        by_rack.setdefault(n.rack, []).append(n)
    width = max((len(v) for v in per_node.values()), default=1) or 1
    for rack, rack_nodes in by_rack.items():
        hosts = slots[rack] * width + extra.get(rack, 0)
        net = carver.carve(prefix_for(hosts))
        if net is None:
            raise carver.exhausted(f"rack {rack}")
        gw = str(net[1])
        subnets.append(Subnet(pool, rack, str(net), gw, str(net[RESERVED_LOW + 1]), hosts))
        offset = RESERVED_LOW + 1
        base, cidr = int(net.first), str(net)
        for rack_slot, n in enumerate(rack_nodes):
            for j, iface in enumerate(per_node[n.name]):
                addresses.append(Address(pool, n.name, iface,
                                         ip_str(base + offset + rack_slot * width + j),
                                         net.prefixlen, cidr, gw))


def plan_addresses(site: Site, catalog: Catalog, nodes: Sequence[Node],
                   fabric_nodes: Sequence[Node], rails: int, switches: Sequence[Switch],
                   boot_ifaces: dict[str, str],
                   appliances: Sequence[str] = ()) -> tuple[list[Subnet], list[Address]]:
    """All subnets and addresses of the site; switches and then ``appliances`` get their
    management address from the switch_mgmt pool."""
    a: Addressing = site.addressing
    subnets: list[Subnet] = []
    addresses: list[Address] = []
    slots = rack_slots(site, nodes)
    slots = {r: math.ceil(s * (1 + a.headroom)) for r, s in slots.items()}
    pdus: dict[str, int] = {}
    for hall in site.halls:
        for row in hall.rows:
            for i in range(1, row.racks + 1):
                pdus[row.rack_names.format(hall=hall.name, row=row.name, index=i)] = row.rack.pdus
    with_bmc = [n for n in nodes if catalog.nodes[n.type].bmc]
    _per_rack("oob", a.oob, with_bmc, slots, {n.name: ["bmc"] for n in with_bmc},
              {r: pdus.get(r, 0) for r in slots}, subnets, addresses)
    _per_rack("inband", a.inband, nodes, slots, {n.name: [boot_ifaces[n.group]] for n in nodes},
              {}, subnets, addresses)
    if a.storage:
        st_nodes = [n for n in nodes if catalog.nodes[n.type].storage_nics]
        _per_rack("storage", a.storage, st_nodes, slots,
                  {n.name: [f"stor{i}" for i in range(catalog.nodes[n.type].storage_nics)]
                   for n in st_nodes}, {}, subnets, addresses)
    if a.ipoib and rails:
        if len(a.ipoib) == rails:
            rail_pools = [netaddr.IPNetwork(c) for c in a.ipoib]
        elif len(a.ipoib) == 1:
            split = 2 ** math.ceil(math.log2(rails))
            base = netaddr.IPNetwork(a.ipoib[0])
            if base.prefixlen + int(math.log2(split)) > 30:
                raise PlanError(f"address pool ipoib ({base}) is too small to split into "
                                f"{rails} rail subnets")
            rail_pools = list(base.subnet(base.prefixlen + int(math.log2(split))))[:rails]
        else:
            raise PlanError(f"addressing.ipoib lists {len(a.ipoib)} pools; give one per "
                            f"rail/plane ({rails}) or a single pool to split")
        for r, net in enumerate(rail_pools):
            if len(fabric_nodes) + RESERVED_LOW + 2 > net.size:
                raise PlanError(f"address pool ipoib rail {r} ({net}) is exhausted: "
                                f"{len(fabric_nodes)} nodes need "
                                f"{len(fabric_nodes) + RESERVED_LOW + 2 - net.size} more "
                                "addresses")
            subnets.append(Subnet("ipoib", f"rail{r}", str(net), "", str(net[RESERVED_LOW + 1]),
                                  net.size - RESERVED_LOW - 2))
            base, cidr = int(net.first), str(net)
            for i, n in enumerate(fabric_nodes):
                addresses.append(Address("ipoib", n.name, f"ib{r}",
                                         ip_str(base + RESERVED_LOW + 1 + i), net.prefixlen,
                                         cidr, ""))
    mgmt = netaddr.IPNetwork(a.switch_mgmt)
    managed = [sw.name for sw in switches] + list(appliances)
    if len(managed) + RESERVED_LOW + 2 > mgmt.size:
        raise PlanError(f"address pool switch_mgmt ({mgmt}) is exhausted: {len(switches)} "
                        f"switches and {len(appliances)} appliances need "
                        f"{len(managed) + RESERVED_LOW + 2 - mgmt.size} more addresses")
    subnets.append(Subnet("switch_mgmt", "switches", str(mgmt), str(mgmt[1]),
                          str(mgmt[RESERVED_LOW + 1]), mgmt.size - RESERVED_LOW - 2))
    base, cidr, gw = int(mgmt.first), str(mgmt), str(mgmt[1])
    for i, name in enumerate(managed):
        addresses.append(Address("switch_mgmt", name, "mgmt0",
                                 ip_str(base + RESERVED_LOW + 1 + i), mgmt.prefixlen, cidr, gw))
    return subnets, addresses
