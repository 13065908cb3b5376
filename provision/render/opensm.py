"""Plan -> OpenSM configuration: opensm.conf, GUID files, partitions and the node name map.

GUIDs come from a name -> GUID map: the one ``gpuctl fabric verify`` discovered
(``inventory/sites/<site>/discovered_guids.json``, read by the CLI layer and passed in) merged
over :func:`provision.render.ibsim.synthetic_guids`, so a fabric that is only partly
discovered still gets complete files.

Routing: ``ftree`` when the fabric is a pure fat tree (every CA on a leaf switch, links only
between adjacent tiers, at least two tiers, compute nodes on at least two leaves: OpenSM's
ftree refuses a single leaf), which the rail-optimized, multi-plane and plain
fat-tree builders produce; it is given the top tier as root GUID file (so it does not have to
guess roots from a partly cabled fabric) and the compute HCAs as compute nodes (the UFM is an
I/O node). Anything else gets ``updn`` with the same roots: deadlock-free on any topology.

A multi-plane fabric is one subnet per plane: one SM and one configuration per plane. A
further InfiniBand fabric of the site (``fabrics.infiniband.<name>``) is a subnet of its own:
its files go under ``opensm/<name>/`` (``opensm/<name>/plane<N>/``), the compute fabric's stay
at ``opensm/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain
from operator import attrgetter, itemgetter, methodcaller

from provision.plan.build import Plan
from provision.plan.ibnames import UFM
from provision.render.ibsim import (
    IbFabric,
    ca_port_guids,
    ib_fabric,
    port_guid,
    split_planes,
    synthetic_guids,
)
from provision.render.templating import render

FILES = ("root_guids.conf", "cn_guids.conf", "io_guids.conf", "partitions.conf",
         "node-name-map")
DEFAULT_DIR = "/etc/opensm"
_TIERS = ("leaf", "spine", "core")
_LINKS = attrgetter("links")


def resolve_guids(plan: Plan, discovered: Mapping[str, str] | None = None,
                  fabrics: Mapping[str, IbFabric] | None = None) -> dict[str, str]:
    """Synthetic GUIDs of every fabric node, overridden by the discovered ones (``fabrics``:
    every InfiniBand fabric's graph, when the caller has built them)."""
    guids = synthetic_guids(plan, fabrics)
    if discovered:
        guids.update(discovered)
    return guids


def routing(fabric: IbFabric) -> tuple[str, str]:
    """(routing engine, why) for ``fabric``."""
    tier = {n.name: n.tier for n in fabric.nodes if n.kind == "Switch"}
    present = {t for t in tier.values()}
    problems: list[str] = []
    if len(present) < 2 or "leaf" not in present:
        problems.append("it has fewer than two switch tiers")
    cn_leaves = {peer for n in fabric.nodes if n.kind == "Hca" and n.name != UFM
                 for peer, _ in n.links.values()}
    if len(cn_leaves) < 2:
        # OpenSM's ftree gives up ("Failed to find leaf switches") below two such leaves.
        problems.append("fewer than two leaf switches have compute nodes")
    if not _pure_fat_tree(fabric, tier):
        problems = _link_problems(fabric, tier, problems)
    if not problems:
        return "ftree", ("The fabric is a pure fat tree (CAs on leaves, links only between "
                         "adjacent tiers): fat-tree routing balances every leaf's traffic "
                         "over all uplinks and is deadlock-free; the root GUID file names the "
                         "top tier so partial cabling cannot confuse root detection.")
    return "updn", ("The fabric is not a pure fat tree (" + "; ".join(problems[:3]) + "): "
                    "up/down routing is deadlock-free on any topology, ranked from the "
                    "root GUID file.")


_PEER = itemgetter(0)
_VALUES = methodcaller("values")


def _pure_fat_tree(fabric: IbFabric, tier: Mapping[str, str]) -> bool:
    """Whether :func:`_link_problems` would find nothing: every CA's peers are leaves and
    every switch's peers of a known tier are one tier away. The same verdict from C-level
    passes (all CAs' peers at once, a set per switch), not a Python step per port (1.2 s at
    131k GPUs, where the fabric is a pure fat tree and the explanation is never needed)."""
    cas = [n for n in fabric.nodes if n.kind == "Hca"]
    leaves = {name for name, t in tier.items() if t == "leaf"}
    if not set(map(_PEER, chain.from_iterable(map(_VALUES, map(_LINKS, cas))))) <= leaves:
        return False
    rank = {name: _TIERS.index(t) for name, t in tier.items() if t in _TIERS}
    for n in fabric.nodes:
        if n.kind == "Switch" and n.tier in _TIERS:
            r = _TIERS.index(n.tier)
            if not set(map(rank.get, map(_PEER, n.links.values()))) <= {None, r - 1, r + 1}:
                return False
    return True


def _link_problems(fabric: IbFabric, tier: Mapping[str, str],
                   problems: list[str]) -> list[str]:
    """``problems`` and the links that break the fat tree, in node and port order, up to
    the node that brings them past two."""
    problems = list(problems)
    for n in fabric.nodes:
        for peer, _ in n.links.values():
            if n.kind == "Hca" and tier.get(peer) != "leaf":
                problems.append(f"CA {n.name} is not on a leaf switch")
            elif n.kind == "Switch" and peer in tier and n.tier in _TIERS \
                    and tier[peer] in _TIERS \
                    and abs(_TIERS.index(n.tier) - _TIERS.index(tier[peer])) != 1:
                problems.append(f"{n.name} ({n.tier}) links to {peer} ({tier[peer]})")
        if len(problems) > 2:
            break
    return problems


def _top_tier(fabric: IbFabric) -> list[str]:
    ranks = [n.tier for n in fabric.nodes if n.kind == "Switch"]
    top = max((t for t in ranks if t in _TIERS), key=_TIERS.index, default="")
    return [n.name for n in fabric.nodes if n.kind == "Switch" and n.tier == top]


def opensm_files(plan: Plan, guids: Mapping[str, str] | None = None,
                 plane: int | None = None, fabric: str = "compute") -> dict[str, str]:
    """Bare file name -> text of the files opensm.conf points at."""
    g = dict(guids) if guids is not None else synthetic_guids(plan)
    return _files(plan, ib_fabric(plan, plane, fabric), g, plane, fabric)


def _subnet_note(fabric: str, plane: int | None) -> str:
    """`` fabric zone2 plane 1``: which subnet a file is for (nothing for the compute fabric)."""
    return (f" fabric {fabric}" if fabric != "compute" else "") \
        + (f" plane {plane}" if plane is not None else "")


def _files(plan: Plan, fabric: IbFabric, g: Mapping[str, str],
           plane: int | None, name: str) -> dict[str, str]:
    site = plan.site.site.name
    head = f"site {site}" + _subnet_note(name, plane)
    roots = [g[name] for name in _top_tier(fabric)]
    cas = [n for n in fabric.nodes if n.kind == "Hca"]
    cns = ca_port_guids(g, [n for n in cas if n.name != UFM])
    ios = [port_guid(g, n, p) for n in cas if n.name == UFM for p in sorted(n.links)]
    cf = plan.site.fabrics.ib().get(name)
    pkey = cf.ipoib_pkey if cf is not None else "0x7fff"
    parts = [f"# {head}: IPoIB partitions (generated by gpuctl plan)",
             "Default=0x7fff,ipoib:ALL=full;"]
    if int(pkey, 16) & 0x7FFF != 0x7FFF:
        parts.append(f"{name}=0x{int(pkey, 16) & 0x7FFF:04x},ipoib,defmember=full:"
                     "ALL_CAS, ALL_SWITCHES=full, SELF=full;")
    files = {
        "root_guids.conf": _lines(f"{head}: root (top-tier) switch node GUIDs", roots),
        "cn_guids.conf": _lines(f"{head}: compute node HCA port GUIDs", cns),
        "partitions.conf": "\n".join(parts) + "\n",
        "node-name-map": _lines(f"{head}: node GUID -> name",
                                [f'{g[n.name]} "{n.name}"' for n in fabric.nodes]),
    }
    if ios:
        files["io_guids.conf"] = _lines(f"{head}: I/O node (UFM) port GUIDs", ios)
    return files


def _lines(comment: str, lines: list[str]) -> str:
    return "\n".join([f"# {comment}", *lines]) + "\n"


def opensm_conf(plan: Plan, guids: Mapping[str, str] | None = None, plane: int | None = None,
                file_dir: str | None = DEFAULT_DIR, fabric: str = "compute") -> str:
    """opensm.conf pointing at :func:`opensm_files` in ``file_dir``.

    ``file_dir=None`` writes bare file names: the lab writes the files next to opensm.conf
    and rewrites those names to absolute paths (provision.lab.fabric.render_opensm_conf).
    """
    part = ib_fabric(plan, plane, fabric)
    g = dict(guids) if guids is not None else synthetic_guids(plan)
    return _conf(plan, part, _files(plan, part, g, plane, fabric), fabric, plane, file_dir)


def _conf(plan: Plan, fabric: IbFabric, files: Mapping[str, str], name: str,
          plane: int | None, file_dir: str | None) -> str:
    engine, reason = routing(fabric)
    sm = fabric.nodes[0]
    sm_note = ("the UFM appliance" if sm.name == UFM
               else f"embedded SM of a {sm.tier} switch, port 0")

    def path(name: str) -> str:
        return name if file_dir is None else f"{file_dir.rstrip('/')}/{name}"

    where = "next to this file" if file_dir is None else f"in {file_dir}"
    return render("opensm/opensm.conf.j2", site=plan.site.site.name,
                  subnet=f"{name} fabric" + (f" plane {plane}" if plane is not None else ""),
                  sm=sm.name, sm_note=sm_note, engine=engine,
                  reason=_wrap(f"Routing engine: {engine}. {reason}"),
                  files_note=[f"GUID and partition files are {where}."],
                  cn_file=engine == "ftree", io_file=engine == "ftree" and "io_guids.conf"
                  in files, path=path, sm_priority=15)


def _wrap(text: str, width: int = 90) -> str:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    lines.append(cur)
    return "\n# ".join(lines)


def subnet_dir(fabric: str, plane: int | None) -> str:
    """Directory of one subnet's files below ``opensm/`` or ``/etc/opensm``: ``""`` for the
    compute fabric, ``zone2``, ``plane1``, ``zone2/plane1``."""
    parts = ([] if fabric == "compute" else [fabric]) \
        + ([] if plane is None else [f"plane{plane}"])
    return "/".join(parts)


def opensm_tree(plan: Plan, guids: Mapping[str, str] | None = None,
                fabric: str = "compute", whole: IbFabric | None = None) -> dict[str, str]:
    """Every OpenSM file of ``fabric`` under ``opensm/`` + :func:`subnet_dir` (``whole``: the
    fabric's graph, when the caller has built it)."""
    whole = whole if whole is not None else ib_fabric(plan, fabric=fabric)
    g = dict(guids) if guids is not None else synthetic_guids(plan)
    out: dict[str, str] = {}
    for plane, part in split_planes(whole).items():
        sub = subnet_dir(fabric, plane)
        files = _files(plan, part, g, plane, fabric)
        fdir = f"{DEFAULT_DIR}/{sub}" if sub else DEFAULT_DIR
        out[f"opensm/{sub}/opensm.conf" if sub else "opensm/opensm.conf"] = _conf(
            plan, part, files, fabric, plane, fdir)
        out.update({f"opensm/{sub}/{name}" if sub else f"opensm/{name}": text
                    for name, text in files.items()})
    return out
