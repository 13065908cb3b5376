"""Lint rules about several InfiniBand fabrics in one site (``fabrics.compute`` plus
``fabrics.infiniband``): each node group on one fabric, names that cannot clash, and the UFM
appliance where the plan puts it."""

from __future__ import annotations

from collections.abc import Iterator

from provision.loader import LoadedSite, Loc
from provision.models.site import ComputeFabric
from provision.plan.build import RESERVED_FABRIC_NAMES
from provision.plan.lintbase import Finding, finding, rule


def ib_sections(ls: LoadedSite) -> list[tuple[str, Loc, ComputeFabric]]:
    """Every InfiniBand fabric of the site with the path of its section, compute first."""
    fabrics = ls.site.fabrics
    out: list[tuple[str, Loc, ComputeFabric]] = []
    if fabrics.compute is not None:
        out.append(("compute", ("fabrics", "compute"), fabrics.compute))
    out += [(n, ("fabrics", "infiniband", n), f) for n, f in fabrics.infiniband.items()]
    return out


@rule
def one_fabric_per_group(ls: LoadedSite) -> Iterator[Finding]:
    """GPU147: a node group attached to two InfiniBand fabrics (or twice to one)."""
    owner: dict[str, str] = {}
    for name, loc, cfg in ib_sections(ls):
        for gi, group in enumerate(cfg.node_groups):
            first = owner.get(group)
            if first is not None:
                where = "twice" if first == name else f"also on the {first} fabric"
                yield finding("GPU147", f"{name} fabric: node group {group} is {where}; a node "
                              "group's HCAs are cabled to one InfiniBand fabric",
                              "list the group under one fabric only (split it into two groups "
                              "to put nodes on both)", *loc, "node_groups", gi, subject=group)
            else:
                owner[group] = name


@rule
def fabric_names(ls: LoadedSite) -> Iterator[Finding]:
    """GPU148: a further InfiniBand fabric named like another network or a switch-name part.

    GPU149: UFM ports on a further fabric (the plan has one UFM, on the compute fabric)."""
    for name, cfg in ls.site.fabrics.infiniband.items():
        loc: Loc = ("fabrics", "infiniband", name)
        if RESERVED_FABRIC_NAMES.match(name):
            yield finding("GPU148", f"InfiniBand fabric name {name!r} is reserved (another "
                          "network's name, or a part of the compute fabric's switch names)",
                          "choose another name, e.g. zone2 or storageib", *loc, subject=name)
        if cfg.topology == "rail-optimized" and cfg.ufm_ports:
            yield finding("GPU149", f"{name} fabric reserves {cfg.ufm_ports} UFM ports; the "
                          "UFM appliance is planned on the compute fabric only",
                          "set ufm_ports: 0 (this fabric's subnet manager then runs on its "
                          "first top-tier switch)", *loc, "topology", subject=name)


@rule
def ipoib_fabric_names(ls: LoadedSite) -> Iterator[Finding]:
    """GPU153: IPoIB pools for a fabric that is not under fabrics.infiniband."""
    known = list(ls.site.fabrics.infiniband)
    for name in ls.site.addressing.ipoib_fabrics:
        if name not in known:
            hint = (f"use one of {', '.join(known)}" if known else
                    "add the fabric under fabrics.infiniband, or remove the entry")
            if name == "compute":
                hint = "the compute fabric's IPoIB pools are addressing.ipoib"
            yield finding("GPU153", f"addressing.ipoib_fabrics names {name!r}, which is not a "
                          "further InfiniBand fabric of this site", hint,
                          "addressing", "ipoib_fabrics", name, subject=name)
