"""InfiniBand compute-fabric builders: a port-level graph of switches and links.

Three shapes, all sized by demand (shared/reference/fabrics.md) and never silently truncated:

* rail-optimized fat tree with scalable units (DGX SuperPOD): HCA r of every node of SU s
  lands on leaf r of SU s; leaves reach spines evenly; pods + cores when two tiers cannot hold
  the leaves;
* multi-plane fat tree (DeepSeek-V3): NIC p of every node on plane p, each plane an
  independent fat tree;
* plain 2/3-tier fat tree of radix k with an oversubscription ratio.

Port numbers are 1-based. Lower-tier ports come first on every switch (downlinks), uplinks
after them. Everything here is pure and deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from provision.errors import PlanError
from provision.models.catalog import Catalog, SwitchType
from provision.models.site import ComputeFabric
from provision.plan.layout import Node


@dataclass(slots=True)
class Switch:
    """A switch of any fabric; rack and U are filled in by the placement step."""

    name: str
    model: str
    fabric: str
    tier: str
    plane: int | None = None
    su: int | None = None
    pod: int | None = None
    rack: str = ""
    u: int = 0


@dataclass(slots=True)
class Link:
    """One cable's worth of connectivity: ``a`` is the lower end (host or lower tier).

    A record, never mutated once built; not frozen because frozen construction is several
    times slower and a GW-scale fabric has half a million links."""

    fabric: str
    kind: str
    a: str
    a_port: str
    b: str
    b_port: str
    plane: int | None = None
    rail: int | None = None


@dataclass
class FabricPlan:
    """Switches and links of one fabric, plus sizing facts."""

    name: str
    topology: str
    tiers: int
    switches: list[Switch] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    endpoints: int = 0
    max_endpoints: int = 0
    units: list[tuple[int, int]] = field(default_factory=list)
    """Rail-optimized: (nodes, node slots) per scalable unit; SU 1's slots exclude the UFM's."""
    future_switches: list[Switch] = field(default_factory=list)
    """Switches of the design capacity that no built node needs yet (placed and addressed,
    not installed); ``switches`` holds the rest."""
    future_links: list[Link] = field(default_factory=list)
    """Switch-to-switch links with a future end (cabled when that switch is installed)."""
    design_order: list[str] = field(default_factory=list)
    """Every switch name, built and future, in design order (placement and addresses follow
    it, so installing a future switch moves nothing); empty when nothing is future."""
    design_endpoints: int = 0
    """Endpoints at the design capacity (0: no design capacity given)."""


def upper_count(lower: int, up_per_lower: int, radix: int) -> int:
    """Upper-tier switches needed so every lower switch reaches every upper one evenly.

    ``ceil(lower * up / radix)`` rounded up to a divisor of ``up``; raises ValueError when
    even one link per pair cannot fit (lower > radix).
    """
    if lower <= 0 or up_per_lower <= 0:
        return 0
    if lower > radix:
        raise ValueError(f"{lower} lower switches exceed the upper radix {radix}")
    s = max(1, math.ceil(lower * up_per_lower / radix))
    while up_per_lower % s:
        s += 1
    return s


def connect(fab: FabricPlan, kind: str, lower: Sequence[Switch], first_up_port: int,
            up_ports: int, uppers: Sequence[Switch], first_down_port: int = 1,
            plane: int | None = None, width: int = 1) -> None:
    """Wire every lower switch's uplinks evenly across ``uppers``, cage by cage.

    ``m = up_ports / S`` links join each pair. With twin-port cages (``width`` 2) and
    ``m`` a multiple of the width, both ports of a lower cage go to one upper and land in one
    of its cages, so one twin-port cable carries them; otherwise uplink u goes to upper
    ``u % S`` (a cage then reaches two peers and needs optics with two fiber legs). Lower
    switch i's links to an upper take its ports ``i*m + 1 .. i*m + m`` from
    ``first_down_port``.
    """
    s = len(uppers)
    m = up_ports // s
    w = width if width > 1 and m % width == 0 and (first_up_port - 1) % width == 0 \
        and (first_down_port - 1) % width == 0 else 1
    # Uplink u's upper and port offset are the same for every lower switch: computed once
    # (a GW-scale fabric wires hundreds of thousands of links here).
    wiring = []
    for u in range(up_ports):
        g, lane = divmod(u, w)
        wiring.append((str(first_up_port + u), uppers[g % s].name, (g // s) * w + lane))
    port_names: dict[int, str] = {}
    append, name = fab.links.append, fab.name
    for i, lo in enumerate(lower):
        base = first_down_port + i * m
        for up_port, up_name, offset in wiring:
            port = base + offset
            down = port_names.get(port)
            if down is None:
                down = port_names[port] = str(port)
            append(Link(name, kind, lo.name, up_port, up_name, down, plane))


def _split(radix: int, oversubscription: float) -> tuple[int, int]:
    """Down and up ports of a leaf of ``radix`` ports at ``oversubscription`` (down:up)."""
    up = max(1, round(radix / (1 + oversubscription)))
    return radix - up, up


def _tree_above(fab: FabricPlan, leaves: list[Switch], up: int, model: SwitchType,
                tiers: int, prefix: str, plane: int | None, leaves_per_pod: int) -> None:
    """Add spines (and pods + cores for 3 tiers) above ``leaves`` with ``up`` uplinks each."""
    k = model.ports
    if tiers == 2:
        try:
            n_sp = upper_count(len(leaves), up, k)
        except ValueError as exc:
            raise PlanError(f"fabric {fab.name}: {len(leaves)} leaves need more than two tiers "
                            f"of {model.name} (radix {k}); set tiers: 3 or auto") from exc
        spines = [Switch(f"{prefix}spine{j + 1:02d}", model.name, fab.name, "spine", plane)
                  for j in range(n_sp)]
        fab.switches.extend(spines)
        connect(fab, "leaf-spine", leaves, k - up + 1, up, spines, plane=plane,
                width=model.ports_per_cage)
        return
    half = k // 2
    pods = [leaves[i:i + leaves_per_pod] for i in range(0, len(leaves), leaves_per_pod)]
    if len(pods) > k:
        raise PlanError(f"fabric {fab.name}: {len(leaves)} leaves need {len(pods)} pods; three "
                        f"tiers of {model.name} (radix {k}) hold at most {k}")
    pod_spines: list[list[Switch]] = []
    try:
        n_sp = upper_count(leaves_per_pod, up, half)
    except ValueError as exc:
        raise PlanError(f"fabric {fab.name}: a pod of {leaves_per_pod} leaves does not fit the "
                        f"{half} down ports of a {model.name} pod spine; use a higher-radix "
                        "switch or fewer rails per node") from exc
    for p, pod in enumerate(pods):
        spines = [Switch(f"{prefix}pod{p + 1:02d}-spine{j + 1:02d}", model.name, fab.name,
                         "spine", plane, pod=p + 1) for j in range(n_sp)]
        fab.switches.extend(spines)
        connect(fab, "leaf-spine", pod, k - up + 1, up, spines, plane=plane,
                width=model.ports_per_cage)
        pod_spines.append(spines)
    spine_up = k - half
    n_core = upper_count(len(pods), spine_up, k)
    for j in range(n_sp):
        cores = [Switch(f"{prefix}core{j + 1:02d}-{c + 1:02d}", model.name, fab.name, "core",
                        plane) for c in range(n_core)]
        fab.switches.extend(cores)
        connect(fab, "spine-core", [ps[j] for ps in pod_spines], half + 1, spine_up, cores,
                plane=plane, width=model.ports_per_cage)


def _choose_tiers(cfg: ComputeFabric, leaves: int, k: int, name: str) -> int:
    fits_two = leaves <= k
    if cfg.tiers == "auto":
        return 2 if fits_two else 3
    if cfg.tiers == 2 and not fits_two:
        raise PlanError(f"fabric {name}: {leaves} leaves cannot be joined by two tiers of "
                        f"radix {k} (at most {k} leaves); use tiers: 3 or auto")
    return int(cfg.tiers)


def switch_prefix(name: str) -> str:
    """Switch-name prefix of InfiniBand fabric ``name``: ``ib-`` for the compute fabric (the
    names single-fabric sites always had), ``ib-<name>-`` for a further fabric."""
    return "ib-" if name == "compute" else f"ib-{name}-"


def _rails(nodes: Sequence[Node], catalog: Catalog, name: str) -> int:
    counts = {len(catalog.nodes[n.type].compute_hcas) for n in nodes}
    if len(counts) != 1:
        raise PlanError(f"fabric {name}: attached node types have different HCA counts "
                        f"{sorted(counts)}; split them into separate fabrics")
    rails = counts.pop()
    if rails == 0:
        raise PlanError(f"fabric {name}: attached nodes have no compute HCAs")
    return rails


def build_rail_optimized(cfg: ComputeFabric, nodes: Sequence[Node], catalog: Catalog,
                         name: str = "compute") -> FabricPlan:
    model = catalog.switches[cfg.switch]
    k = model.ports
    rails = _rails(nodes, catalog, name)
    down = cfg.su_size
    up = min(k - down, max(1, math.ceil(down / cfg.oversubscription)))
    if down + up > k or up <= 0:
        raise PlanError(f"fabric {name}: su_size {down} leaves no uplinks on {model.name} "
                        f"(radix {k})")
    ufm_slots = math.ceil(cfg.ufm_ports / rails) if cfg.ufm_ports else 0
    slots = len(nodes) + ufm_slots
    n_su = max(1, math.ceil(slots / down))
    fab = FabricPlan(name, "rail-optimized", 2, endpoints=len(nodes) * rails + cfg.ufm_ports)
    leaves: list[Switch] = []
    for s in range(n_su):
        for r in range(rails):
            leaves.append(Switch(f"{switch_prefix(name)}su{s + 1:02d}-leaf{r + 1:02d}",
                                 model.name, name, "leaf", su=s + 1))
    fab.switches.extend(leaves)
    # Slot order: SU 1 keeps its last slot(s) for the UFM so growth never moves it.
    node_slot: list[int] = []
    for i in range(len(nodes)):
        node_slot.append(i if i < down - ufm_slots else i + ufm_slots)
    fill = [0] * n_su
    for node, slot in zip(nodes, node_slot, strict=True):
        su, port = divmod(slot, down)
        fill[su] += 1
        for r in range(rails):
            leaf = leaves[su * rails + r]
            fab.links.append(Link(name, "node-leaf", node.name, catalog.nodes[node.type]
                                  .compute_hcas[r].device, leaf.name, str(port + 1), rail=r))
    fab.units = [(f, down - (ufm_slots if s == 0 else 0)) for s, f in enumerate(fill)]
    for i in range(cfg.ufm_ports):
        r = i % rails
        port = down - ufm_slots + i // rails
        fab.links.append(Link(name, "ufm-leaf", "ufm", f"ib{i}", leaves[r].name, str(port + 1),
                              rail=r))
    fab.tiers = _choose_tiers(cfg, len(leaves), k, name)
    pod_leaves = max(rails, (k // 2) // rails * rails)
    _tree_above(fab, leaves, up, model, fab.tiers, switch_prefix(name), None, pod_leaves)
    fab.max_endpoints = _max_endpoints(k, fab.tiers)
    return fab


def hca_devices(nodes: Sequence[Node], catalog: Catalog) -> dict[str, list[str]]:
    """Compute HCA device names by node type, read once instead of once per host link."""
    return {t: [h.device for h in catalog.nodes[t].compute_hcas] for t in {n.type for n in nodes}}


def build_fat_tree(cfg: ComputeFabric, nodes: Sequence[Node], catalog: Catalog,
                   name: str = "compute", planes: int = 1) -> FabricPlan:
    """Plain fat tree (planes=1) or multi-plane fat tree (HCA p on plane p)."""
    model = catalog.switches[cfg.switch]
    k = model.ports
    rails = _rails(nodes, catalog, name)
    down, up = _split(k, cfg.oversubscription)
    topology = "multi-plane" if planes > 1 else "fat-tree"
    fab = FabricPlan(name, topology, 2, endpoints=len(nodes) * rails)
    if planes > 1 and rails != planes:
        raise PlanError(f"fabric {name}: {planes} planes need {planes} HCAs per node, "
                        f"the attached nodes have {rails}")
    per_plane: list[list[tuple[Node, int]]] = []
    if planes > 1:
        per_plane = [[(n, p) for n in nodes] for p in range(planes)]
    else:
        per_plane = [[(n, r) for n in nodes for r in range(rails)]]
    devices = hca_devices(nodes, catalog)
    ports = [str(port + 1) for port in range(down)]
    append = fab.links.append
    for p, endpoints in enumerate(per_plane):
        plane = p if planes > 1 else None
        prefix = switch_prefix(name) + (f"p{p}-" if planes > 1 else "")
        n_leaves = max(1, math.ceil(len(endpoints) / down))
        tiers = _choose_tiers(cfg, n_leaves, k, name)
        fab.tiers = tiers
        leaves = [Switch(f"{prefix}leaf{i + 1:03d}", model.name, name, "leaf", plane)
                  for i in range(n_leaves)]
        fab.switches.extend(leaves)
        for e, (node, r) in enumerate(endpoints):
            leaf, port = divmod(e, down)
            append(Link(name, "node-leaf", node.name, devices[node.type][r], leaves[leaf].name,
                        ports[port], plane, r))
        _tree_above(fab, leaves, up, model, tiers, prefix, plane, k // 2)
    fab.max_endpoints = _max_endpoints(k, fab.tiers) * planes
    return fab


def split_future(fab: FabricPlan, present: set[str], endpoints: int) -> None:
    """Turn a fabric built for its design capacity into what ``present`` nodes need now:
    links of nodes not built yet go, switches none of whose lower ends is built become
    future (a leaf: no built node or UFM on it; a spine or core: only future switches below),
    and so do the links that reach them."""
    live: set[str] = set()
    host_links: list[Link] = []
    up_links: list[Link] = []
    for lk in fab.links:
        if lk.kind == "ufm-leaf" or (lk.kind == "node-leaf" and lk.a in present):
            host_links.append(lk)
            live.add(lk.b)
        elif lk.kind != "node-leaf":
            up_links.append(lk)
    for lk in up_links:  # leaf-spine before spine-core: lower ends are settled first
        if lk.a in live:
            live.add(lk.b)
    fab.design_order = [sw.name for sw in fab.switches]
    fab.links = host_links + [lk for lk in up_links if lk.a in live]
    fab.future_links = [lk for lk in up_links if lk.a not in live]
    fab.future_switches = [sw for sw in fab.switches if sw.name not in live]
    fab.switches = [sw for sw in fab.switches if sw.name in live]
    fab.design_endpoints, fab.endpoints = fab.endpoints, endpoints
    if fab.units:
        su_of = {sw.name: sw.su for sw in fab.switches}
        fill: dict[int, int] = {}
        for lk in host_links:
            if lk.kind == "node-leaf" and lk.rail == 0:
                su = su_of[lk.b] or 0
                fill[su] = fill.get(su, 0) + 1
        built = max((sw.su or 0 for sw in fab.switches if sw.tier == "leaf"), default=0)
        fab.units = [(fill.get(i + 1, 0), slots)
                     for i, (_, slots) in enumerate(fab.units[:built])]


def _max_endpoints(k: int, tiers: int) -> int:
    return k * k // 2 if tiers == 2 else k ** 3 // 4


BUILDERS: dict[str, Callable[[ComputeFabric, Sequence[Node], Catalog, str], FabricPlan]] = {
    "rail-optimized": build_rail_optimized,
    "fat-tree": build_fat_tree,
    "multi-plane": lambda cfg, nodes, cat, name: build_fat_tree(cfg, nodes, cat, name,
                                                                planes=cfg.planes),
}


def build_compute(cfg: ComputeFabric, nodes: Sequence[Node], catalog: Catalog,
                  name: str = "compute") -> FabricPlan:
    """Build InfiniBand fabric ``name`` for ``nodes`` (already filtered to cfg.node_groups)."""
    if cfg.switch not in catalog.switches:
        raise PlanError(f"{name} fabric references unknown switch type {cfg.switch!r}")
    return BUILDERS[cfg.topology](cfg, nodes, catalog, name)
