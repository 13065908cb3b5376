"""A planned InfiniBand fabric as port-level ends, and the scope a verification checks.

A site with several InfiniBand fabrics (``fabrics.compute`` plus ``fabrics.infiniband``) is
verified one fabric at a time: each is its own subnet, discovered from one of its own HCAs.

An *end* is ``(node name, port number)`` with node names as the fabric itself reports them
(:mod:`provision.plan.ibnames` defines them): a host's HCA is ``"<host> mlx5_N"`` port 1,
the UFM appliance is the CA ``"ufm"`` with ``ibK`` on port ``K + 1``, a switch is its plan
name. Every planned link carries its cable (ID, racks, cage) from ``plan.cables``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from provision.errors import PlanError, UsageError
from provision.plan.build import Plan
from provision.plan.cabling import Cable, cable_id
from provision.plan.fabric import Switch
from provision.plan.ibnames import End, lower_end, port_number

TIER_RANK = {"ca": 0, "leaf": 1, "spine": 2, "core": 3}
WIDTH = "4x"
"""Every planned InfiniBand link is four lanes wide."""


@dataclass(frozen=True, slots=True)
class PlannedLink:
    """One planned cable between two ends; ``a`` is the lower end (host or lower tier)."""

    a: End
    b: End
    kind: str
    cable: str
    a_rack: str = ""
    b_rack: str = ""
    b_cage: str = ""
    plane: int | None = None
    rail: int | None = None
    su: int | None = None
    host: str | None = None
    a_label: str = ""
    """The lower end as printed on its chassis or panel (``OSFP4P2``, ``17/1``) where that
    differs from its port name; empty otherwise."""

    def other(self, end: End) -> End:
        return self.b if end == self.a else self.a

    @property
    def key(self) -> tuple[End, End]:
        return link_key(self.a, self.b)


def link_key(x: End, y: End) -> tuple[End, End]:
    return (x, y) if x <= y else (y, x)


@dataclass
class Expected:
    """The planned fabric: links by key and by end, devices by name."""

    site: str
    speed: str
    topology: str = "fat-tree"
    fabric: str = "compute"
    """Name of the InfiniBand fabric (``compute`` or a key of ``fabrics.infiniband``)."""
    links: dict[tuple[End, End], PlannedLink] = field(default_factory=dict)
    by_end: dict[End, PlannedLink] = field(default_factory=dict)
    switches: dict[str, Switch] = field(default_factory=dict)
    cas: dict[str, str] = field(default_factory=dict)
    """CA name -> host (``"ufm"`` for the UFM appliance)."""
    racks: dict[str, str] = field(default_factory=dict)
    """Device (CA or switch) -> rack."""

    def tier(self, name: str) -> int:
        sw = self.switches.get(name)
        return TIER_RANK.get(sw.tier, 1) if sw is not None else 0

    def lower_first(self, x: End, y: End) -> tuple[End, End]:
        """The two ends of a cable, the lower one (host, then lower tier) first."""
        return (x, y) if (self.tier(x[0]), x) <= (self.tier(y[0]), y) else (y, x)


def expected_fabric(plan: Plan, fabric: str = "compute") -> Expected:
    """InfiniBand fabric ``fabric`` of ``plan`` as ends; PlanError when it has none,
    UsageError when the site has other InfiniBand fabrics but not that one."""
    fab = plan.fabrics.get(fabric)
    cf = plan.site.fabrics.ib().get(fabric)
    if fab is None or cf is None:
        known = plan.ib_names()
        if known:
            raise UsageError(f"--fabric {fabric!r}: site {plan.site.site.name} has no such "
                             f"InfiniBand fabric; known: {', '.join(known)}")
        raise PlanError(f"site {plan.site.site.name} has no compute fabric to verify")
    cables: dict[str, Cable] = {c.id: c for c in plan.cables if c.fabric == fabric}
    exp = Expected(plan.site.site.name, cf.speed, fab.topology, fabric)
    exp.switches = {s.name: s for s in fab.switches}
    node_rack = {n.name: n.rack for n in plan.nodes}
    for s in fab.switches:
        exp.racks[s.name] = s.rack
    for lk in fab.links:
        a = lower_end(lk)
        b = (lk.b, port_number(lk.b_port, lk.b))
        cid = cable_id(lk)
        cable = cables.get(cid)
        su = None
        host = None
        if lk.kind in ("node-leaf", "ufm-leaf"):
            exp.cas[a[0]] = lk.a
            exp.racks[a[0]] = node_rack.get(lk.a, plan.ufm_rack)
            su = exp.switches[lk.b].su
            host = lk.a if lk.kind == "node-leaf" else None
        elif lk.kind == "leaf-spine":
            su = exp.switches[lk.a].su
        label = cable.a_cage if cable and cable.a_cage != lk.a_port else ""
        pl = PlannedLink(a, b, lk.kind, cid, cable.a_rack if cable else "",
                         cable.b_rack if cable else "", cable.b_cage if cable else lk.b_port,
                         lk.plane, lk.rail, su, host, label)
        exp.links[pl.key] = pl
        exp.by_end[a] = pl
        exp.by_end[b] = pl
    return exp


@dataclass(frozen=True)
class Scope:
    """What must be present: links touching these racks, SUs or hosts (everything if empty)."""

    racks: frozenset[str] = frozenset()
    sus: frozenset[int] = frozenset()
    hosts: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return not (self.racks or self.sus or self.hosts)

    def covers(self, link: PlannedLink) -> bool:
        if self.everything:
            return True
        return (link.a_rack in self.racks or link.b_rack in self.racks
                or (link.su is not None and link.su in self.sus)
                or (link.host is not None and link.host in self.hosts))

    def describe(self) -> str:
        if self.everything:
            return "whole fabric"
        parts = []
        if self.racks:
            parts.append("rack=" + ",".join(sorted(self.racks)))
        if self.sus:
            parts.append("su=" + ",".join(str(s) for s in sorted(self.sus)))
        if self.hosts:
            parts.append("host=" + ",".join(sorted(self.hosts)))
        return " ".join(parts)


def _values(item: str) -> tuple[str, list[str]]:
    key, sep, rest = item.partition("=")
    values = [v.strip() for v in rest.split(",") if v.strip()]
    if not sep or not values:
        raise UsageError(f"--scope {item!r}: expected KEY=VALUE[,VALUE...] with KEY one of "
                         "rack, su, host")
    return key.strip(), values


def _check(kind: str, values: Iterable[str], known: Iterable[str], fabric: str) -> None:
    allowed = sorted(set(known))
    for v in values:
        if v not in allowed:
            shown = ", ".join(allowed[:8]) + (" ..." if len(allowed) > 8 else "")
            raise UsageError(f"--scope {kind}={v!r}: no such {kind} in the {fabric} fabric; "
                             f"known: {shown or 'none'}")


def parse_scope(items: Sequence[str], exp: Expected) -> Scope:
    """``["rack=a01,a02", "su=1", "host=dgx-001"]`` -> a Scope (union), checked against the plan."""
    racks: set[str] = set()
    sus: set[int] = set()
    hosts: set[str] = set()
    links = list(exp.links.values())
    for item in items:
        key, values = _values(item)
        if key == "rack":
            _check("rack", values, [r for lk in links for r in (lk.a_rack, lk.b_rack) if r],
                   exp.fabric)
            racks.update(values)
        elif key == "su":
            known = [str(lk.su) for lk in links if lk.su is not None]
            if not known:
                raise UsageError(f"--scope {item!r}: this fabric has no scalable units; "
                                 "use rack= or host=")
            _check("su", [v.lstrip("0") or "0" for v in values], known, exp.fabric)
            sus.update(int(v) for v in values)
        elif key == "host":
            _check("host", values, [lk.host for lk in links if lk.host], exp.fabric)
            hosts.update(values)
        else:
            raise UsageError(f"--scope {item!r}: unknown scope {key!r}; use rack, su or host")
    return Scope(frozenset(racks), frozenset(sus), frozenset(hosts))
