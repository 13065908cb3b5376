"""The lab's network: one Linux bridge, one network namespace per host, veth pairs between.

All through iproute2 (``ip``, batched: one process for the root-namespace commands of all
hosts, one per host namespace), argv lists, bounded by timeouts.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from provision.errors import LabError
from provision.lab.proc import run

IP = "ip"
NETNS_DIR = Path("/run/netns")
_WORKERS = 4


@dataclass(frozen=True)
class HostLink:
    """One host's namespace and its link to the bridge."""

    host: str
    ns: str
    veth: str  # bridge side; the namespace side is eth0
    address: str  # with prefix
    mac: str


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def netns_exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


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
    _batch([f"link add {name} type bridge", f"addr add {address} dev {name}",
            f"link set {name} up"], what=f"lab site {site}: creating bridge {name}")


def create_hosts(site: str, bridge: str, links: Sequence[HostLink]) -> None:
    """Namespaces with loopback up and ``eth0`` (the host address) on ``bridge``."""
    root_cmds: list[str] = []
    for h in links:
        root_cmds += [
            f"netns add {h.ns}",
            f"link add {h.veth} type veth peer name eth0 address {h.mac} netns {h.ns}",
            f"link set {h.veth} master {bridge} up",
        ]
    _batch(root_cmds, what=f"lab site {site}: creating host namespaces")

    def inside(h: HostLink) -> None:
        _batch(["link set lo up", f"addr add {h.address} dev eth0", "link set eth0 up"],
               what=f"lab host {h.host}: configuring {h.ns}", ns=h.ns)

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        list(pool.map(inside, links))


def netns_pids(namespaces: Sequence[str]) -> dict[str, list[int]]:
    """For each existing namespace, the pids whose network namespace it is (one /proc scan)."""
    wanted: dict[tuple[int, int], str] = {}
    for ns in namespaces:
        try:
            st = os.stat(NETNS_DIR / ns)
        except OSError:
            continue
        wanted[(st.st_dev, st.st_ino)] = ns
    found: dict[str, list[int]] = {ns: [] for ns in wanted.values()}
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue  # exited meanwhile
        ns_name = wanted.get((st.st_dev, st.st_ino))
        if ns_name is not None:
            found[ns_name].append(int(entry.name))
    return found


def delete_namespaces(namespaces: Sequence[str]) -> None:
    """Delete the named namespaces that exist (kill their processes first)."""
    present = [ns for ns in namespaces if netns_exists(ns)]
    if present:
        _batch([f"netns del {ns}" for ns in present], what="lab: deleting namespaces",
               force=True)
    left = [ns for ns in present if netns_exists(ns)]
    if left:
        raise LabError(f"lab: namespaces {', '.join(left)} could not be deleted")


def delete_links(names: Sequence[str]) -> None:
    """Delete the named links that exist (a veth whose peer's namespace is gone is gone too)."""
    present = [name for name in names if link_exists(name)]
    if present:
        _batch([f"link del {name}" for name in present], what="lab: deleting links",
               force=True)
    left = [name for name in present if link_exists(name)]
    if left:
        raise LabError(f"lab: links {', '.join(left)} could not be deleted")


def batch(lines: list[str], *, what: str, ns: str | None = None, force: bool = False) -> None:
    """Run several ``ip`` commands in one process (in namespace ``ns`` when given)."""
    _batch(lines, what=what, ns=ns, force=force)


def _batch(lines: list[str], *, what: str, ns: str | None = None, force: bool = False) -> None:
    """Run several ``ip`` commands in one process (``ip -batch -``); unless ``force``, stop at
    the first error."""
    argv = [IP] + (["-n", ns] if ns else []) + (["-force"] if force else []) + ["-batch", "-"]
    timeout = 20 + len(lines) * 0.1
    try:
        result = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True,
                                text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: ip did not finish within {timeout:g}s") from exc
    if result.returncode != 0 and not force:
        msg = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise LabError(f"{what}: {msg}")
