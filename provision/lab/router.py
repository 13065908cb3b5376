"""Routed racks: a second in-band subnet behind a router namespace that relays DHCP.

Each routed rack gets its own Linux bridge (no address in the root namespace) and a router
namespace with two legs: ``up0`` on the first rack's bridge (the rack's ``uplink`` address)
and ``rk0`` on the rack's bridge (the rack's gateway, which Kea hands out as ``routers``).
The router forwards between them and runs ``dhcrelay`` (isc-dhcp-relay) toward the
provisioning host, the way a ToR or router relays for a rack; Kea picks the rack's subnet
by the relay's giaddr. The first rack's namespace hosts and the root namespace get a route
to the rack's subnet via the uplink, so the services host answers and SSH reaches the rack.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from provision.lab.names import IFNAMSIZ
from provision.lab.netns import batch
from provision.lab.proc import alive, log_tail, run, spawn, wait_for
from provision.lab.state import ProcRecord, RackRecord

UPLINK_IF = "up0"
RACK_IF = "rk0"


def _tag(site: str, rack: str) -> str:
    return hashlib.sha256(f"{site}/{rack}".encode()).hexdigest()[:5]


def rack_names(site: str, rack: str) -> tuple[str, str, str, str]:
    """``(bridge, router namespace, uplink veth, rack veth)`` of a routed rack."""
    tag = _tag(site, rack)
    return (f"gb{tag}-{rack}"[:IFNAMSIZ], f"gl-{site}-router-{rack}",
             f"gu{tag}-{rack}"[:IFNAMSIZ], f"gr{tag}-{rack}"[:IFNAMSIZ])


def create(site: str, first_bridge: str, rack: RackRecord) -> None:
    """The rack's bridge and its router namespace (not the relay: :func:`start_relay`)."""
    what = f"lab site {site}: rack {rack.name}"
    batch([
        f"link add {rack.bridge} type bridge", f"link set {rack.bridge} up",
        f"netns add {rack.router_netns}",
        f"link add {rack.uplink_veth} type veth peer name {UPLINK_IF} netns {rack.router_netns}",
        f"link set {rack.uplink_veth} master {first_bridge} up",
        f"link add {rack.rack_veth} type veth peer name {RACK_IF} netns {rack.router_netns}",
        f"link set {rack.rack_veth} master {rack.bridge} up",
    ], what=f"{what}: creating bridge and router")
    batch(["link set lo up", f"addr add {rack.uplink} dev {UPLINK_IF}",
           f"link set {UPLINK_IF} up", f"addr add {rack.gateway} dev {RACK_IF}",
           f"link set {RACK_IF} up"], what=f"{what}: configuring router", ns=rack.router_netns)
    run(["ip", "netns", "exec", rack.router_netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        what=f"{what}: enabling forwarding")


def add_routes(site: str, rack: RackRecord, namespaces: Sequence[str]) -> None:
    """Route the rack's subnet via the router's uplink, in each namespace and in the root
    namespace (the route goes with the first bridge's address on ``down``)."""
    net = ipaddress.IPv4Interface(rack.gateway).network
    via = ipaddress.IPv4Interface(rack.uplink).ip
    for ns in namespaces:
        batch([f"route replace {net} via {via}"],
              what=f"lab site {site}: route to rack {rack.name} in {ns}", ns=ns)
    batch([f"route replace {net} via {via}"], what=f"lab site {site}: route to rack {rack.name}")


def start_relay(rack: RackRecord) -> ProcRecord:
    """``dhcrelay`` in the router namespace, in the foreground (``-d``): upstream ``up0``,
    downstream ``rk0``, toward ``relay_to``; its log (forwarded requests) in the lab dir."""
    return spawn(["ip", "netns", "exec", rack.router_netns, "dhcrelay", "-4", "-d",
                  "-iu", UPLINK_IF, "-id", RACK_IF, rack.relay_to],
                 label=f"lab rack {rack.name} DHCP relay", log=Path(rack.relay_log))


def wait_relay(rack: RackRecord, timeout: float = 10.0) -> None:
    log = Path(rack.relay_log)
    assert rack.relay is not None
    relay = rack.relay

    def listening() -> bool | None:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            return None
        return True if f"Listening on LPF/{RACK_IF}" in text else None

    def died() -> str | None:
        return None if alive(relay) else f"{relay.label} exited: {log_tail(log)}"

    wait_for(listening, timeout=timeout, interval=0.1, fail=died,
             what=f"{relay.label} did not listen on {RACK_IF}")
