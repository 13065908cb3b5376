"""A lab spec whose hosts carry the plan's host names (lab-gpu-NN) for provision tests.

The lab site name differs from the plan's (``lab``) so these tests never touch a lab another
command brought up for the ``lab`` site; ``gpuctl provision --lab-dir`` joins the two by
host name.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import uuid

from provision.lab.spec import LabHost, LabSpec

RAILS = 2


def _used() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    return [ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
            for link in json.loads(out) for a in link.get("addr_info", [])]


def free_net(seed: int) -> ipaddress.IPv4Network:
    used = _used()
    for off in range(200):
        net = ipaddress.IPv4Network(f"10.214.{(seed + off) % 200}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /24 in 10.214.0.0/16")


def provision_spec(site: str, hosts: list[str], seed: int) -> LabSpec:
    net = free_net(seed)
    base = net.network_address
    leaves = [f"{site}-leaf-{r + 1}" for r in range(RAILS)]
    ports = max(40, len(hosts) + 2)
    records: list[str] = []
    for rail, leaf in enumerate(leaves):
        other = leaves[1 - rail]
        lines = [f'Switch {ports} "{leaf}"']
        lines += [f'[{i + 1}] "{h} mlx5_{rail}"[1] # lid 0 4xHDR' for i, h in enumerate(hosts)]
        lines += [f'[{p}] "{other}"[{p}] # lid 0 4xHDR' for p in (ports - 1, ports)]
        records.append("\n".join(lines))
    for i, h in enumerate(hosts):
        for rail, leaf in enumerate(leaves):
            records.append(f'Hca 1 "{h} mlx5_{rail}"\n[1] "{leaf}"[{i + 1}] # lid 0 4xHDR')
    return LabSpec(
        site=site, gateway=f"{base + 1}/24",
        hosts=tuple(LabHost(name=h, address=f"{base + 11 + i}/24",
                            bmc_system_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{h}.{site}")),
                            hca_ids=tuple(f"{h} mlx5_{r}" for r in range(RAILS)),
                            catalog_type="hgx-a100-hdr-lab")
                    for i, h in enumerate(hosts)),
        ibsim_net="\n\n".join(records) + "\n",
        opensm_conf="routing_engine minhop\n", opensm_files={})


def netns_run(*argv: str, ns: str | None = None, timeout: float = 60,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command (inside network namespace ``ns`` when given); with ``check`` a non-zero
    exit fails the test with the command and its output."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}): {res.stdout}{res.stderr}")
    return res
