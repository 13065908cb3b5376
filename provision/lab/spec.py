"""What a local lab is made of: the interface between the site plan and the lab machinery.

``provision.lab.from_plan`` builds a :class:`LabSpec` from a site's plan; ``provision.lab.up``
turns it into network namespaces, SSH servers, a Redfish emulator and an ibsim fabric.
:func:`validate` checks a spec before anything is created, so a bad spec fails with one line
naming the host and field, and nothing is left half-made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import re
import uuid
from dataclasses import dataclass

from provision.errors import LabError


@dataclass(frozen=True)
class LabHost:
    name: str  # hostname, e.g. "lab-gpu-01"
    address: str  # in-band address with prefix, e.g. "10.210.0.11/24"
    bmc_system_id: str  # Redfish system UUID (stable)
    hca_ids: tuple[str, ...]  # node descriptions of its HCAs in the ibsim net file
    catalog_type: str  # e.g. "hgx-a100-hdr-lab"


@dataclass(frozen=True)
class RoutedRack:
    """A rack whose in-band subnet sits behind a router namespace (not on the first bridge):
    the router has ``uplink`` on the first rack's subnet and ``gateway`` on this rack's
    bridge, forwards between them and relays DHCP (isc-dhcp-relay) to ``relay_to``."""

    name: str  # rack name, e.g. "a02"
    gateway: str  # the router's address on this rack's subnet, with prefix
    uplink: str  # the router's address on the first rack's subnet, with prefix
    relay_to: str  # the DHCP server (the provisioning host's address), no prefix


@dataclass(frozen=True)
class LabVm:
    """A libvirt QEMU (TCG) machine with a blank disk that network-boots: the lab makes the
    machine and its BMC (sushy-emulator's libvirt driver), never its OS or sshd."""

    name: str  # hostname, e.g. "labvm-gpu-01"
    address: str  # planned in-band address with prefix (Kea gives it after imaging)
    mac: str  # the NIC's MAC, from the site's delivery manifest (macs.json)
    rack: str  # "" = the first rack (the gateway's bridge), else a RoutedRack's name
    bmc_system_id: str  # the domain's UUID = its Redfish system id
    memory_mib: int = 1024
    disk_gib: int = 4


@dataclass(frozen=True)
class LabSpec:
    site: str  # site name, e.g. "lab"
    gateway: str  # bridge address with prefix, e.g. "10.210.0.1/24"
    hosts: tuple[LabHost, ...]
    ibsim_net: str  # text of an ibsim net file (ibnetdiscover-like format)
    opensm_conf: str  # opensm.conf text (may reference files in opensm_files by bare name)
    opensm_files: dict[str, str]  # extra files for opensm (guid files, partitions) name->text
    racks: tuple[RoutedRack, ...] = ()  # further racks behind a router + DHCP relay
    vms: tuple[LabVm, ...] = ()  # VM nodes (libvirt), on the first rack or a routed one


_SITE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NODE_RE = re.compile(r'^\s*(?:Switch|Hca|Ca)\s+\d+\s+"([^"]+)"', re.MULTILINE)


def ibsim_node_ids(net: str) -> list[str]:
    """The quoted node ids of the ``Switch``/``Hca`` header lines of an ibsim net file."""
    return _NODE_RE.findall(net)


def spec_digest(spec: LabSpec) -> str:
    """A stable digest of the whole spec: ``up`` rebuilds a lab whose spec changed."""
    data = dataclasses.asdict(spec)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def validate(spec: LabSpec) -> None:
    """Raise :class:`LabError` naming the first thing wrong with ``spec``."""
    if not _SITE_RE.match(spec.site):
        raise LabError(
            f"lab site {spec.site!r}: name must be lowercase letters, digits and '-' "
            "(at most 40 characters)"
        )
    try:
        gateway = ipaddress.IPv4Interface(spec.gateway)
    except ValueError as exc:
        raise LabError(f"lab site {spec.site}: gateway {spec.gateway!r} is not an IPv4 "
                       f"address with prefix ({exc})") from exc
    if gateway.network.prefixlen > 30 or gateway.ip == gateway.network.network_address:
        raise LabError(f"lab site {spec.site}: gateway {spec.gateway!r} is not a usable "
                       "host address of a subnet")
    if not spec.hosts:
        raise LabError(f"lab site {spec.site}: no hosts")
    nodes = set(ibsim_node_ids(spec.ibsim_net))
    if not nodes:
        raise LabError(f"lab site {spec.site}: the ibsim net file has no Switch/Hca records")
    seen_names: set[str] = set()
    seen_addrs: set[ipaddress.IPv4Address] = {gateway.ip}
    seen_uuids: set[str] = set()
    seen_hcas: set[str] = set()
    seen_macs: set[str] = set()
    for host in spec.hosts:
        _validate_host(spec.site, host, gateway, nodes)
        addr = ipaddress.IPv4Interface(host.address).ip
        for value, seen, what in (
            (host.name, seen_names, "name"),
            (str(uuid.UUID(host.bmc_system_id)), seen_uuids, "bmc_system_id"),
        ):
            if value in seen:
                raise LabError(f"lab host {host.name}: duplicate {what} {value!r}")
            seen.add(value)
        if addr in seen_addrs:
            raise LabError(f"lab host {host.name}: address {host.address!r} is already used "
                           "by another host or the gateway")
        seen_addrs.add(addr)
        for hca in host.hca_ids:
            if hca in seen_hcas:
                raise LabError(f"lab host {host.name}: HCA {hca!r} belongs to another host")
            seen_hcas.add(hca)
    subnets = _validate_racks(spec, gateway, seen_addrs)
    for vm in spec.vms:
        _validate_vm(spec.site, vm, subnets)
        addr = ipaddress.IPv4Interface(vm.address).ip
        if vm.name in seen_names:
            raise LabError(f"lab host {vm.name}: duplicate name {vm.name!r}")
        seen_names.add(vm.name)
        if str(uuid.UUID(vm.bmc_system_id)) in seen_uuids:
            raise LabError(f"lab host {vm.name}: duplicate bmc_system_id {vm.bmc_system_id!r}")
        seen_uuids.add(str(uuid.UUID(vm.bmc_system_id)))
        if addr in seen_addrs:
            raise LabError(f"lab host {vm.name}: address {vm.address!r} is already used "
                           "by another host, a gateway or a router")
        seen_addrs.add(addr)
        if vm.mac in seen_macs:
            raise LabError(f"lab host {vm.name}: mac {vm.mac!r} belongs to another VM")
        seen_macs.add(vm.mac)
    for name in spec.opensm_files:
        if not _FILE_RE.match(name) or name in {"opensm.conf", "opensm.log"}:
            raise LabError(f"lab site {spec.site}: opensm file name {name!r} must be a bare "
                           "file name (letters, digits, '.', '_', '-')")


def _validate_racks(spec: LabSpec, gateway: ipaddress.IPv4Interface,
                    seen_addrs: set[ipaddress.IPv4Address]) -> dict[str, ipaddress.IPv4Network]:
    """Check the routed racks; return ``{rack name: subnet}`` ("" = the first rack)."""
    subnets: dict[str, ipaddress.IPv4Network] = {"": gateway.network}
    for rack in spec.racks:
        where = f"lab site {spec.site}: rack {rack.name!r}"
        if not _HOST_RE.match(rack.name) or rack.name in subnets:
            raise LabError(f"{where}: name must be a unique hostname-like label")
        ifaces = {}
        for field_name in ("gateway", "uplink"):
            value = getattr(rack, field_name)
            try:
                ifaces[field_name] = ipaddress.IPv4Interface(value)
            except ValueError as exc:
                raise LabError(f"{where}: {field_name} {value!r} is not an IPv4 address with "
                               f"prefix ({exc})") from exc
        net = ifaces["gateway"].network
        if any(net.overlaps(other) for other in subnets.values()):
            raise LabError(f"{where}: gateway subnet {net} overlaps another rack's subnet")
        if ifaces["uplink"].network != gateway.network:
            raise LabError(f"{where}: uplink {rack.uplink!r} is not in the first rack's "
                           f"subnet {gateway.network}")
        try:
            relay_to = ipaddress.IPv4Address(rack.relay_to)
        except ValueError as exc:
            raise LabError(f"{where}: relay_to {rack.relay_to!r} is not an IPv4 address") from exc
        if relay_to not in gateway.network:
            raise LabError(f"{where}: relay_to {rack.relay_to} is not in the first rack's "
                           f"subnet {gateway.network}")
        for field_name, iface in ifaces.items():
            if iface.ip in seen_addrs:
                raise LabError(f"{where}: {field_name} {iface.ip} is already used by a host "
                               "or gateway")
            seen_addrs.add(iface.ip)
        subnets[rack.name] = net
    return subnets


def _validate_vm(site: str, vm: LabVm, subnets: dict[str, ipaddress.IPv4Network]) -> None:
    if not _HOST_RE.match(vm.name):
        raise LabError(f"lab site {site}: VM name {vm.name!r} is not a valid hostname")
    if not _MAC_RE.match(vm.mac):
        raise LabError(f"lab host {vm.name}: mac {vm.mac!r} is not a lower-case MAC address "
                       "(aa:bb:cc:dd:ee:ff)")
    if int(vm.mac[:2], 16) & 1:
        raise LabError(f"lab host {vm.name}: mac {vm.mac!r} is a multicast address")
    if vm.rack not in subnets:
        raise LabError(f"lab host {vm.name}: rack {vm.rack!r} is not a routed rack of the lab "
                       f"(racks: {', '.join(sorted(r for r in subnets if r)) or 'none'})")
    try:
        addr = ipaddress.IPv4Interface(vm.address)
    except ValueError as exc:
        raise LabError(f"lab host {vm.name}: address {vm.address!r} is not an IPv4 address "
                       f"with prefix ({exc})") from exc
    if addr.network != subnets[vm.rack]:
        raise LabError(f"lab host {vm.name}: address {vm.address!r} is not in its rack's "
                       f"subnet {subnets[vm.rack]}")
    try:
        uuid.UUID(vm.bmc_system_id)
    except ValueError as exc:
        raise LabError(f"lab host {vm.name}: bmc_system_id {vm.bmc_system_id!r} is not "
                       "a UUID") from exc
    if not 128 <= vm.memory_mib <= 65536:
        raise LabError(f"lab host {vm.name}: memory_mib {vm.memory_mib} is not in 128..65536")
    if not 1 <= vm.disk_gib <= 1024:
        raise LabError(f"lab host {vm.name}: disk_gib {vm.disk_gib} is not in 1..1024")


def _validate_host(site: str, host: LabHost, gateway: ipaddress.IPv4Interface,
                   nodes: set[str]) -> None:
    if not _HOST_RE.match(host.name):
        raise LabError(f"lab site {site}: host name {host.name!r} is not a valid hostname")
    try:
        addr = ipaddress.IPv4Interface(host.address)
    except ValueError as exc:
        raise LabError(f"lab host {host.name}: address {host.address!r} is not an IPv4 "
                       f"address with prefix ({exc})") from exc
    if addr.network != gateway.network:
        raise LabError(f"lab host {host.name}: address {host.address!r} is not in the "
                       f"gateway's subnet {gateway.network}")
    if addr.ip in (gateway.network.network_address, gateway.network.broadcast_address):
        raise LabError(f"lab host {host.name}: address {host.address!r} is the network or "
                       "broadcast address")
    try:
        uuid.UUID(host.bmc_system_id)
    except ValueError as exc:
        raise LabError(f"lab host {host.name}: bmc_system_id {host.bmc_system_id!r} is not "
                       "a UUID") from exc
    for hca in host.hca_ids:
        if hca not in nodes:
            raise LabError(f"lab host {host.name}: HCA {hca!r} is not a node of the ibsim "
                           "net file")
