"""Plan -> an InfiniBand fabric as ibsim sees it: node GUIDs and an ibsim net file.

Every function takes the fabric's name (``fabric=``, default ``"compute"``): a site may have
further InfiniBand fabrics (``fabrics.infiniband``), each its own subnet with its own SM and
net file. One GUID map (:func:`synthetic_guids`) covers the nodes of all of them.

The net file is the ibnetdiscover topology format that Debian's ``ibsim`` (ibsim-utils 0.10)
loads: one record per node, a header line ``Switch <ports> "<node id>"`` or
``Hca <ports> "<node id>"``, then one line per cabled port
``[<port>] "<peer node id>"[<peer port>] # lid 0 4xHDR``. ibsim takes the link width and
speed from that comment and, like ibnetdiscover, the node GUID from a ``switchguid=`` /
``caguid=`` line before the header (each such line sets the GUID of the next node).

Node names are the fabric's own (:mod:`provision.plan.ibnames`): an HCA is
``"<hostname> mlx5_N"``, the UFM appliance the CA ``"ufm"``, a switch its plan name.

Where the subnet manager runs: ibsim attaches a client that names no node (``SIM_HOST``
unset) at the *first port of the first record*, so the first record is the SM's node. When
the plan has a UFM appliance (rail-optimized SuperPODs) the SM runs there, as NVIDIA's
reference architecture puts it; otherwise it runs on the first switch of the top tier (a
managed switch's embedded SM; its port 0). Multi-plane fabrics are independent subnets, one
SM each: the whole file lists the planes one after the other, each starting with its SM node
(so the first node of every connected part is that part's SM), and :func:`sm_node` names the
SM node of every plane (give it to OpenSM as ``SIM_HOST``).

GUIDs: :func:`synthetic_guids` derives stable node GUIDs from device names (a hash with the
locally-administered bit set and the low 4 bits clear, so ``node GUID + port`` never meets
another node's GUID). ibsim gives a CA port GUID ``node GUID + port number`` and a switch
port the node GUID; :func:`port_guid` applies that rule unless the GUID map carries the port
GUID itself under ``"<node id>[<port>]"`` (how discovered GUIDs of real HCAs, where port 1's
GUID usually equals the node GUID, are recorded).

ibsim 0.10 knows link speeds up to HDR; faster planned links are written as HDR (the header
says so), because ibsim would bring an unknown speed up as SDR.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter

from provision.errors import PlanError
from provision.plan.build import Plan
from provision.plan.fabric import FabricPlan
from provision.plan.ibnames import UFM, lower_end, port_number

IBSIM_SPEEDS = ("SDR", "DDR", "QDR", "FDR", "EDR", "HDR")
"""Link speeds Debian's ibsim 0.10 understands in a port comment (slowest first)."""

_TIER_RANK = {"core": 3, "spine": 2, "leaf": 1}


@dataclass(eq=False, slots=True)
class IbNode:
    """One node of the InfiniBand fabric as ibsim and ibnetdiscover see it."""

    name: str
    kind: str  # "Switch" or "Hca"
    ports: int
    links: dict[int, tuple[str, int]] = field(default_factory=dict)
    plane: int | None = None
    tier: str = ""


@dataclass
class IbFabric:
    """The compute fabric as an IB graph: nodes in net-file order, the SM node first."""

    nodes: list[IbNode]
    speed: str
    planned_speed: str
    parts: dict[int | None, IbFabric] | None = field(default=None, repr=False, compare=False)
    """:func:`split_planes`' result once computed (a graph's nodes are not changed once
    built): the renderers of one fabric split it several times, 0.3 s each at 131k GPUs."""

    def links(self) -> set[tuple[str, int, str, int]]:
        """Each cable once, as ``(node, port, peer, peer port)`` with ``node < peer``."""
        out: set[tuple[str, int, str, int]] = set()
        for n in self.nodes:
            for port, (peer, pport) in n.links.items():
                out.add((n.name, port, peer, pport) if (n.name, port) < (peer, pport)
                        else (peer, pport, n.name, port))
        return out


def ib_fabric(plan: Plan, plane: int | None = None, fabric: str = "compute") -> IbFabric:
    """InfiniBand fabric ``fabric`` of ``plan`` (one plane of a multi-plane fabric when
    ``plane`` is set).

    Raises PlanError when the plan has no such fabric. Built on every call: a caller that
    needs the graph more than once builds it once and passes it on.
    """
    whole = _build_fabric(plan, fabric)
    return whole if plane is None else _plane(plan, split_planes(whole), plane, fabric)


def _plane(plan: Plan, parts: Mapping[int | None, IbFabric], plane: int,
           fabric: str) -> IbFabric:
    if plane not in parts:
        raise PlanError(f"{fabric} fabric of site {plan.site.site.name} has no plane {plane}")
    return parts[plane]


def _build_fabric(plan: Plan, name: str) -> IbFabric:
    fab: FabricPlan | None = plan.fabrics.get(name)
    cf = plan.site.fabrics.ib().get(name)
    if fab is None or cf is None:
        known = ", ".join(plan.ib_names()) or "none"
        raise PlanError(f"site {plan.site.site.name} has no InfiniBand fabric {name!r} to "
                        f"render (its InfiniBand fabrics: {known})")
    speed = cf.speed if cf.speed in IBSIM_SPEEDS else IBSIM_SPEEDS[-1]
    switches: dict[str, IbNode] = {}
    for sw in fab.switches:
        ports = plan.catalog.switches[sw.model].ports
        switches[sw.name] = IbNode(sw.name, "Switch", ports, plane=sw.plane, tier=sw.tier)
    cas = _link_ends(fab, switches)
    whole = _ordered(list(switches.values()), list(cas.values()), speed, cf.speed)
    parts = split_planes(whole)
    if None in parts:
        return whole
    # Multi-plane: plane after plane, each starting with its own SM node. Splitting this
    # order again gives the same parts (each part's SM is already its first node).
    return IbFabric([n for part in parts.values() for n in part.nodes], speed, cf.speed,
                    parts)


def _link_ends(fab: FabricPlan, switches: Mapping[str, IbNode]) -> dict[str, IbNode]:
    """Enter every link at both of its ends (``switches`` get theirs); returns the CAs.

    One pass over half a million links at 131k GPUs: port names are looked up, not parsed
    (the usual ones are in a table; any other is parsed once), and a host HCA's end (its port 1) is built inline
    rather than through :func:`lower_end`, which gives the same ends.
    """
    cas: dict[str, IbNode] = {}
    ufm_ports = sum(1 for lk in fab.links if lk.kind == "ufm-leaf")
    numbers = {str(i): i for i in range(1024)}
    ends = {name: sw.links for name, sw in switches.items()}
    for lk in fab.links:
        kind, a_dev, a_text, b_dev, b_text = _ENDS(lk)
        if kind == "node-leaf":
            a_name, a_port = f"{a_dev} {a_text}", 1
            a = cas.get(a_name)
            if a is None:
                a = cas[a_name] = IbNode(a_name, "Hca", 1, plane=lk.plane)
            a_links = a.links
        elif kind == "ufm-leaf":
            a_name, a_port = lower_end(lk)
            a = cas.get(UFM)
            if a is None:
                a = cas[UFM] = IbNode(UFM, "Hca", ufm_ports)
            a_links = a.links
        else:
            a_name = a_dev
            a_port = numbers[a_text] if a_text in numbers else _number(numbers, a_text, a_dev)
            a_links = ends[a_dev]
        b_port = numbers[b_text] if b_text in numbers else _number(numbers, b_text, b_dev)
        a_links[a_port] = (b_dev, b_port)
        ends[b_dev][b_port] = (a_name, a_port)
    return cas


_ENDS = attrgetter("kind", "a", "a_port", "b", "b_port")


def _number(numbers: dict[str, int], text: str, what: str) -> int:
    """:func:`port_number` of ``text``, remembered in ``numbers``."""
    numbers[text] = value = port_number(text, what)
    return value


def _ordered(sw_list: list[IbNode], ca_list: list[IbNode], speed: str,
             planned: str) -> IbFabric:
    """Net-file order: the SM node first (UFM, else the first top-tier switch)."""
    top = max((_TIER_RANK.get(s.tier, 0) for s in sw_list), default=0)
    ufm = [c for c in ca_list if c.name == UFM]
    sm = ufm[0] if ufm else next(s for s in sw_list if _TIER_RANK.get(s.tier, 0) == top)
    rest = [n for n in sw_list + ca_list if n is not sm]
    return IbFabric([sm, *rest], speed, planned)


def split_planes(fabric: IbFabric) -> dict[int | None, IbFabric]:
    """One fabric per plane of a multi-plane fabric (``{None: fabric}`` otherwise)."""
    if fabric.parts is None:
        fabric.parts = _split(fabric)
    return fabric.parts


def _split(fabric: IbFabric) -> dict[int | None, IbFabric]:
    by_plane: dict[int, list[IbNode]] = {}
    for n in fabric.nodes:  # one pass, not one per plane (a GW-scale fabric: 150k nodes)
        if n.plane is not None:
            by_plane.setdefault(n.plane, []).append(n)
    if not by_plane:
        return {None: fabric}
    out: dict[int | None, IbFabric] = {}
    for plane in sorted(by_plane):
        nodes = by_plane[plane]
        out[plane] = _ordered([n for n in nodes if n.kind == "Switch"],
                              [n for n in nodes if n.kind != "Switch"], fabric.speed,
                              fabric.planned_speed)
    return out


def sm_node(plan: Plan, plane: int | None = None, fabric: str = "compute") -> str:
    """Node id where the subnet manager of ``plane`` (or of the whole fabric) runs."""
    return ib_fabric(plan, plane, fabric).nodes[0].name


def planes(plan: Plan, fabric: str = "compute") -> list[int | None]:
    """``[None]`` for a single subnet, else the plane numbers of a multi-plane fabric."""
    fab = plan.fabrics.get(fabric)
    found = sorted({s.plane for s in fab.switches if s.plane is not None}) if fab else []
    return list(found) if found else [None]


def _guid_of(name: str, taken: set[int]) -> int:
    salt = 0
    while True:
        digest = hashlib.sha256(f"{name}#{salt}".encode() if salt else name.encode()).digest()
        value = int.from_bytes(digest[:8], "big")
        guid = 0x0200_0000_0000_0000 | (value & 0x00FF_FFFF_FFFF_FFF0)
        if guid not in taken:
            taken.add(guid)
            return guid
        salt += 1


def _guids_of(names: list[str]) -> dict[str, str]:
    """:func:`_guid_of` of each name in turn, as ``"0x%016x"``: the first try inline (all
    but a vanishingly rare few names), as it runs once per fabric node, 141k at 131k GPUs."""
    taken: set[int] = set()
    out: dict[str, str] = {}
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    for name in names:
        guid = 0x0200_0000_0000_0000 | (
            from_bytes(sha256(name.encode()).digest()[:8], "big") & 0x00FF_FFFF_FFFF_FFF0)
        if guid in taken:
            guid = _guid_of(name, taken)
        else:
            taken.add(guid)
        out[name] = f"0x{guid:016x}"
    return out


def ib_fabrics(plan: Plan) -> dict[str, IbFabric]:
    """The graph of every InfiniBand fabric of the plan, by fabric name (compute first)."""
    return {f: ib_fabric(plan, fabric=f) for f in plan.ib_names()}


def synthetic_guids(plan: Plan, fabrics: Mapping[str, IbFabric] | None = None) -> dict[str, str]:
    """Stable node GUIDs (``"0x%016x"``) for every HCA, switch and UFM of every InfiniBand
    fabric of the plan (``fabrics``: their graphs, when the caller has built them).

    Keys are node ids (``"<host> mlx5_N"``, switch names, ``"ufm"``). A GUID depends only on
    its name (collisions, vanishingly rare, are settled in sorted name order).
    """
    graphs = fabrics if fabrics is not None else ib_fabrics(plan)
    return _guids_of(sorted(n.name for f in graphs.values() for n in f.nodes))


def port_guid(guids: Mapping[str, str], node: IbNode, port: int = 1) -> str:
    """Port GUID of ``node``'s ``port``: explicit ``"<id>[<port>]"`` entry, else ibsim's rule."""
    explicit = guids.get(f"{node.name}[{port}]")
    if explicit is not None:
        return explicit
    base = int(guids[node.name], 16)
    return f"0x{base if node.kind == 'Switch' else base + port:016x}"


def ca_port_guids(guids: Mapping[str, str], cas: Iterable[IbNode], port: int = 1) -> list[str]:
    """:func:`port_guid` of ``port`` of every CA in ``cas``, in one pass: a map without
    explicit port entries (no key holds ``[``; the synthetic one) skips looking each up."""
    if "[" in "".join(guids):
        return [port_guid(guids, n, port) for n in cas]
    return [f"0x{int(guids[n.name], 16) + port:016x}" for n in cas]


def _missing(guids: Mapping[str, str], names: Iterable[str]) -> None:
    missing = sorted(set(names) - set(guids))
    if missing:
        raise PlanError(f"GUID map lacks {len(missing)} fabric node(s), e.g. {missing[0]!r}")


def ibsim_net(plan: Plan, guids: Mapping[str, str] | None = None,
              plane: int | None = None, fabric: str = "compute") -> str:
    """The ibsim net file of InfiniBand fabric ``fabric`` (or of one of its planes)."""
    return ibsim_nets(plan, guids, [plane], fabric)[plane]


def ibsim_nets(plan: Plan, guids: Mapping[str, str] | None,
               planes: Iterable[int | None], fabric: str = "compute",
               whole: IbFabric | None = None) -> dict[int | None, str]:
    """Net files of several planes (``None``: the whole fabric), each node's record built
    once and shared between the files (``whole``: the fabric's graph, when the caller has
    built it)."""
    whole = whole if whole is not None else ib_fabric(plan, fabric=fabric)
    g = dict(guids) if guids is not None else synthetic_guids(plan)
    _missing(g, (n.name for n in whole.nodes))
    records = _records(whole, g)
    out: dict[int | None, str] = {}
    parts = split_planes(whole)
    for plane in planes:
        part = whole if plane is None else _plane(plan, parts, plane, fabric)
        kinds = Counter(map(_KIND, part.nodes))
        links = sum(map(len, map(_LINKS, part.nodes))) // 2
        head = [f"# ibsim net file of site {plan.site.site.name}, {fabric} fabric"
                + (f" plane {plane}" if plane is not None else "") + " (generated by gpuctl plan)",
                f"# {kinds['Switch']} switches, {kinds['Hca']} CAs, {links} links; the SM runs "
                f"on the first node: {part.nodes[0].name!r}"]
        if part.planned_speed != part.speed:
            head.append(f"# planned speed {part.planned_speed}; written as {part.speed}, "
                        "the fastest speed ibsim 0.10 knows")
        out[plane] = "\n".join(head + list(map(records.__getitem__, map(_NAME, part.nodes)))) \
            + "\n"
    return out


_KIND, _LINKS, _NAME = attrgetter("kind"), attrgetter("links"), attrgetter("name")


def _records(whole: IbFabric, g: Mapping[str, str]) -> dict[str, str]:
    """Each node's record of the net file by name (shared by the whole file and its plane's):
    its GUID line, header and port lines, each after a line break. A node with one cabled port (every
    host HCA: 131k at 131k GPUs) is one f-string, no list, sort or join."""
    tail = f" # lid 0 4x{whole.speed}"
    records: dict[str, str] = {}
    for n in whole.nodes:
        name, links = n.name, n.links
        head = (f"\nswitchguid={g[name]}\nSwitch" if n.kind == "Switch"
                else f"\ncaguid={g[name]}\n{n.kind}")
        if len(links) == 1:
            [(port, (peer, pport))] = links.items()
            records[name] = f'{head} {n.ports} "{name}"\n[{port}] "{peer}"[{pport}]{tail}'
            continue
        lines = [f'{head} {n.ports} "{name}"']
        lines += [f'[{port}] "{peer}"[{pport}]{tail}'
                  for port, (peer, pport) in sorted(links.items())]
        records[name] = "\n".join(lines)
    return records


def ibsim_sizes(plan: Plan, fabric: str = "compute") -> dict[str, int]:
    """Nodes, switches and ports of the fabric: ibsim's ``-N``/``-S``/``-P`` must cover them
    (its defaults are 2048 nodes, 256 switches, 13312 ports)."""
    nodes = ib_fabric(plan, fabric=fabric).nodes
    return {"nodes": len(nodes),
            "switches": sum(1 for n in nodes if n.kind == "Switch"),
            "ports": sum(n.ports + (1 if n.kind == "Switch" else 0) for n in nodes)}
