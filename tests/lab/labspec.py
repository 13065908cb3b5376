"""A hand-made LabSpec for the lab tests and the scale benchmark.

Hosts ``<prefix>-gpu-NN`` with two HCAs each (rail 0 on leaf 1, rail 1 on leaf 2), two HDR
switches joined by two links; the first switch is the net file's first node, so OpenSM
attaches there.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import uuid

from provision.lab.spec import LabHost, LabSpec

SWITCH_PORTS = 40
RAILS = 2


def hca_id(host: str, rail: int) -> str:
    return f"{host} mlx5_{rail}"


def ibsim_net(hosts: list[str], leaves: list[str], *, planes: bool = False) -> str:
    """Two HDR leaves, host rail r on leaf r, leaves joined on their last two ports
    (40-port leaves; more ports when there are more than 38 hosts). With ``planes`` the
    leaves are not joined: two independent subnets, one per rail, each needing its own SM."""
    ports = max(SWITCH_PORTS, len(hosts) + 2)
    top, low = ports, ports - 1
    records: list[str] = []
    for rail, leaf in enumerate(leaves):
        other = leaves[1 - rail]
        lines = [f'Switch {ports} "{leaf}"']
        lines += [f'[{i + 1}] "{hca_id(h, rail)}"[1] # lid 0 4xHDR' for i, h in enumerate(hosts)]
        if not planes:
            lines += [f'[{p}] "{other}"[{p}] # lid 0 4xHDR' for p in (low, top)]
        records.append("\n".join(lines))
    for i, host in enumerate(hosts):
        for rail, leaf in enumerate(leaves):
            records.append(f'Hca 1 "{hca_id(host, rail)}"\n[1] "{leaf}"[{i + 1}] # lid 0 4xHDR')
    return "\n\n".join(records) + "\n"


def used_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    return [ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
            for link in json.loads(out) for a in link.get("addr_info", [])]


def free_subnet(seed: int) -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that no interface on this machine uses."""
    used = used_networks()
    for offset in range(256):
        net = ipaddress.IPv4Network(f"10.213.{(seed + offset) % 250}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /24 in 10.213.0.0/16")


def make_spec(site: str, count: int, *, seed: int = 0, planes: bool = False) -> LabSpec:
    """A spec on a /24 that is free on this machine (runs ``ip``)."""
    return make_spec_offline(site, count, net=free_subnet(seed), planes=planes)


OFFLINE_NET = ipaddress.IPv4Network("10.213.0.0/24")


def make_spec_offline(site: str, count: int, net: ipaddress.IPv4Network = OFFLINE_NET, *,
                      planes: bool = False) -> LabSpec:
    """A spec on ``net`` (default 10.213.0.0/24), without looking at this machine."""
    if count > 200:
        raise ValueError("at most 200 hosts in one /24")
    base = net.network_address
    names = [f"{site}-gpu-{i + 1:02d}" for i in range(count)]
    hosts = tuple(
        LabHost(
            name=name,
            address=f"{base + 11 + i}/{net.prefixlen}",
            bmc_system_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{site}.gpuctl-lab")),
            hca_ids=tuple(hca_id(name, r) for r in range(RAILS)),
            catalog_type="hgx-a100-hdr-lab",
        )
        for i, name in enumerate(names)
    )
    leaves = [f"{site}-leaf-{r + 1:02d}" for r in range(RAILS)]
    return LabSpec(
        site=site,
        gateway=f"{base + 1}/{net.prefixlen}",
        hosts=hosts,
        ibsim_net=ibsim_net(names, leaves, planes=planes),
        opensm_conf="routing_engine minhop\npartition_config_file partitions.conf\n"
                    "sweep_interval 10\n",
        opensm_files={"partitions.conf": "Default=0x7fff,ipoib:ALL=full;\n"},
    )
