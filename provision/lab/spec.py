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
class LabSpec:
    site: str  # site name, e.g. "lab"
    gateway: str  # bridge address with prefix, e.g. "10.210.0.1/24"
    hosts: tuple[LabHost, ...]
    ibsim_net: str  # text of an ibsim net file (ibnetdiscover-like format)
    opensm_conf: str  # opensm.conf text (may reference files in opensm_files by bare name)
    opensm_files: dict[str, str]  # extra files for opensm (guid files, partitions) name->text


_SITE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
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
    for name in spec.opensm_files:
        if not _FILE_RE.match(name) or name in {"opensm.conf", "opensm.log"}:
            raise LabError(f"lab site {spec.site}: opensm file name {name!r} must be a bare "
                           "file name (letters, digits, '.', '_', '-')")


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
