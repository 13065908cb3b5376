"""Which observed device is which planned one.

Hosts' HCAs are known by their node description (``"<host> mlx5_N"``, rdma-core's default;
an FQDN host part is accepted too). Switches are known by their description when it is a
planned switch name (or a Mellanox ``MF0;<name>:<model>/U1`` description carrying one);
otherwise they are *inferred* from their cabling, tier by tier, by majority vote: leaf r of
SU s is the switch the rail-r HCAs of SU s's hosts land on, a spine is the switch the
identified leaves' uplinks land on, and so on up. Each vote is one cable whose identified
end has a planned peer; a cable that also lands on the planned port counts double. The
highest vote wins first and a planned name is given once. Devices neither identified nor
inferred are unknown; descriptions naming one planned device more than once are duplicates.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from provision.fabric.expected import Expected
from provision.fabric.observed import Topology
from provision.plan.ibnames import End

_MF0 = re.compile(r"^MF0;([^:]+):")
MAX_ROUNDS = 16
"""Inference rounds (one per tier is enough; bounded against pathological captures)."""


@dataclass
class Identity:
    """Planned names of observed devices (by device key) and what could not be named."""

    name_of: dict[str, str] = field(default_factory=dict)
    key_of: dict[str, str] = field(default_factory=dict)
    inferred: dict[str, str] = field(default_factory=dict)
    """Planned switch name -> key of the device inferred to be it from its cabling."""
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    """Planned name -> keys of every device whose description names it (two or more)."""
    unknown: list[str] = field(default_factory=list)

    def assign(self, key: str, name: str) -> None:
        self.name_of[key] = name
        self.key_of[name] = key

    def end(self, key: str, port: int) -> End | None:
        name = self.name_of.get(key)
        return (name, port) if name is not None else None


def ca_name(desc: str, cas: dict[str, str]) -> str | None:
    """The planned CA a node description names, if any (``host.domain mlx5_0`` too)."""
    if desc in cas:
        return desc
    host, sep, dev = desc.partition(" ")
    if "." in host:
        short = host.split(".", 1)[0] + sep + dev
        if short in cas:
            return short
    return None


def switch_name(desc: str, switches: Mapping[str, object]) -> str | None:
    """The planned switch a node description names, if any."""
    if desc in switches:
        return desc
    m = _MF0.match(desc)
    if m and m.group(1) in switches:
        return m.group(1)
    return None


def adjacency(topo: Topology) -> dict[str, dict[int, tuple[str, int]]]:
    adj: dict[str, dict[int, tuple[str, int]]] = defaultdict(dict)
    for lk in topo.links:
        adj[lk.a][lk.a_port] = (lk.b, lk.b_port)
        adj[lk.b][lk.b_port] = (lk.a, lk.a_port)
    return adj


def _agreement(key: str, name: str, adj: dict[str, dict[int, tuple[str, int]]],
               ident: Identity, exp: Expected) -> int:
    score = 0
    for port, (peer, pport) in adj.get(key, {}).items():
        pl = exp.by_end.get((name, port))
        if pl is not None and ident.end(peer, pport) == pl.other((name, port)):
            score += 1
    return score


def _infer_round(candidates: set[str], adj: dict[str, dict[int, tuple[str, int]]],
                 ident: Identity, exp: Expected) -> bool:
    votes: Counter[tuple[str, str]] = Counter()
    for key in candidates:
        for port, (peer, pport) in adj.get(key, {}).items():
            end = ident.end(peer, pport)
            pl = exp.by_end.get(end) if end is not None else None
            if pl is None or end is None:
                continue
            want, want_port = pl.other(end)
            if want in exp.switches and want not in ident.key_of:
                votes[(key, want)] += 2 if want_port == port else 1
    progress = False
    for (key, name), _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
        if key in ident.name_of or name in ident.key_of:
            continue
        ident.assign(key, name)
        ident.inferred[name] = key
        candidates.discard(key)
        progress = True
    return progress


def identify(topo: Topology, exp: Expected) -> Identity:
    """Name every observed device that can be named; see the module docstring."""
    ident = Identity()
    adj = adjacency(topo)
    claims: dict[str, list[str]] = defaultdict(list)
    for key, dev in topo.devices.items():
        name = None
        if dev.kind in ("switch", "unknown"):
            name = switch_name(dev.desc, exp.switches)
        if name is None and dev.kind != "switch":
            name = ca_name(dev.desc, exp.cas)
        if name is not None:
            claims[name].append(key)
    for name, keys in claims.items():
        if len(keys) == 1:
            ident.assign(keys[0], name)
        else:
            ident.duplicates[name] = sorted(keys)
    candidates = {k for k, d in topo.devices.items()
                  if d.kind in ("switch", "unknown") and k not in ident.name_of}
    for _ in range(MAX_ROUNDS):
        if not candidates or not _infer_round(candidates, adj, ident, exp):
            break
    for name, keys in sorted(ident.duplicates.items()):
        if name in ident.key_of:
            continue
        scores = sorted(((_agreement(k, name, adj, ident, exp), k) for k in keys
                         if k not in ident.name_of), reverse=True)
        if scores and scores[0][0] > 0 and (len(scores) == 1 or scores[1][0] < scores[0][0]):
            ident.assign(scores[0][1], name)
    dup_keys = {k for keys in ident.duplicates.values() for k in keys}
    ident.unknown = sorted(k for k in topo.devices if k not in ident.name_of
                           and k not in dup_keys)
    return ident
