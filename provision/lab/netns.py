"""The lab's network: one Linux bridge, one network namespace per host, veth pairs between.

All through iproute2 (``ip``), argv lists, bounded by timeouts.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

from provision.errors import LabError
from provision.lab.proc import kill_pids, run

IP = "ip"


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def netns_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def check_subnet_free(site: str, gateway: str, bridge: str) -> None:
    """Refuse a gateway subnet that overlaps an address already on this machine."""
    net = ipaddress.IPv4Interface(gateway).network
    out = run([IP, "-j", "-4", "addr", "show"], what=f"lab site {site}: listing addresses")
    for link in json.loads(out.stdout or "[]"):
        if link.get("ifname") == bridge:
            continue
        for info in link.get("addr_info", []):
            other = ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}")
            if other.network.overlaps(net):
                raise LabError(
                    f"lab site {site}: gateway subnet {net} overlaps {other} on "
                    f"{link.get('ifname')!r} (another lab up, or a real network?)"
                )


def create_bridge(site: str, name: str, address: str) -> None:
    """Create the bridge with the gateway address and bring it up."""
    what = f"lab site {site}: creating bridge {name}"
    _batch([
        f"link add {name} type bridge",
        f"addr add {address} dev {name}",
        f"link set {name} up",
    ], what=what)


def create_host(host: str, *, ns: str, veth: str, bridge: str, address: str,
                mac: str) -> None:
    """A namespace with loopback up and ``eth0`` (``address``) on ``bridge`` via ``veth``."""
    what = f"lab host {host}: creating namespace {ns}"
    _batch([
        f"netns add {ns}",
        f"link add {veth} type veth peer name eth0 address {mac} netns {ns}",
        f"link set {veth} master {bridge} up",
    ], what=what)
    _batch([
        "link set lo up",
        f"addr add {address} dev eth0",
        "link set eth0 up",
    ], what=what, ns=ns)


def netns_pids(ns: str) -> list[int]:
    """Every process whose network namespace is ``ns`` (empty if ``ns`` is gone)."""
    if not netns_exists(ns):
        return []
    out = run([IP, "netns", "pids", ns], what=f"lab namespace {ns}: listing processes",
              check=False)
    return [int(tok) for tok in out.stdout.split() if tok.isdigit()]


def delete_netns(host: str, ns: str) -> None:
    """Kill whatever still runs in ``ns`` (ssh sessions, daemons), then delete it."""
    if not netns_exists(ns):
        return
    pids = netns_pids(ns)
    if pids:
        kill_pids(pids, what=f"lab host {host}: stopping processes in {ns}")
    run([IP, "netns", "del", ns], what=f"lab host {host}: deleting namespace {ns}")


def delete_link(what: str, name: str) -> None:
    if link_exists(name):
        result = run([IP, "link", "del", name], what=f"{what}: deleting link {name}",
                     check=False)
        if result.returncode != 0 and link_exists(name):
            raise LabError(f"{what}: cannot delete link {name}: {result.stderr.strip()}")


def _batch(lines: list[str], *, what: str, ns: str | None = None) -> None:
    """Run several ``ip`` commands in one process (``ip -batch -``); stop at the first error."""
    argv = [IP] + (["-n", ns] if ns else []) + ["-batch", "-"]
    try:
        result = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True,
                                text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: ip did not finish within 20s") from exc
    if result.returncode != 0:
        msg = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise LabError(f"{what}: {msg}")
