"""Compare the observed fabric with the plan: one finding per physical problem.

Order of diagnosis, each step consuming the planned and observed cables it explains:

1. cables exactly as planned are matched, then checked for width (4x) and the fabric's speed;
2. two cables in each other's ports are one ``swapped`` finding;
3. a cable whose lower end (host HCA, or lower-tier switch port) has a planned cable that is
   not there lands somewhere else: ``wrong-leaf`` (host rail on another leaf or plane),
   ``wrong-port`` (right switch, other port) or ``miscabled``; a cable whose lower end has
   no plan but whose upper port is planned for another cable is matched from that side;
4. devices nobody could name (``unknown-device``) and duplicate descriptions, each one
   finding that also covers the planned ports the device sits on;
5. what remains observed is ``unexpected``; what remains planned is ``missing`` inside the
   scope and ``not-yet-present`` outside it.
"""

from __future__ import annotations

from collections import defaultdict

from provision.fabric.expected import WIDTH, Expected, PlannedLink, Scope, link_key
from provision.fabric.findings import Finding, LinkView, VerifyResult, fmt_end
from provision.fabric.identify import Identity, identify
from provision.fabric.observed import ObservedLink, Topology
from provision.plan.ibnames import End

Obs = tuple[End, End, ObservedLink]
"""An observed cable between named devices: (lower end, upper end, raw link)."""


def _fmt(end: End) -> str:
    return fmt_end(*end)


class _Verifier:
    def __init__(self, topo: Topology, exp: Expected, scope: Scope) -> None:
        self.topo, self.exp, self.scope = topo, exp, scope
        self.ident: Identity = identify(topo, exp)
        self.findings: list[Finding] = []
        self.used: set[tuple[End, End]] = set()
        self.done: set[int] = set()
        self.obs: list[Obs] = []
        self.loose: list[ObservedLink] = []
        self.obs_at: dict[End, int] = {}
        self.seen: set[tuple[End, End]] = set()
        self.scoped = {e for pl in exp.links.values() if scope.covers(pl) for e in (pl.a, pl.b)}
        self.leaf_group: dict[str, str] = {}
        for pl in exp.links.values():
            if pl.kind == "node-leaf" and pl.b[0] not in self.leaf_group:
                self.leaf_group[pl.b[0]] = self.group(pl)
        for lk in topo.links:
            ea, eb = self.ident.end(lk.a, lk.a_port), self.ident.end(lk.b, lk.b_port)
            if ea is None or eb is None:
                self.loose.append(lk)
                continue
            lo, up = exp.lower_first(ea, eb)
            self.obs_at[lo] = self.obs_at[up] = len(self.obs)
            self.obs.append((lo, up, lk))
            self.seen.add(link_key(lo, up))

    # -- helpers ---------------------------------------------------------------------------
    def group(self, pl: PlannedLink) -> str:
        """What a leaf serves, from one host cable planned on it (rail or plane), or ``""``."""
        if self.exp.topology == "multi-plane" and pl.plane is not None:
            return f"a plane-{pl.plane} leaf"
        if self.exp.topology == "rail-optimized" and pl.kind == "node-leaf":
            su = f" of SU {pl.su}" if pl.su is not None else ""
            return f"leaf of the {pl.a[0].rsplit(' ', 1)[-1]} rail{su}"
        return ""

    def in_scope_end(self, end: End) -> bool:
        if self.scope.everything or end in self.scoped:
            return True
        rack = self.exp.racks.get(end[0], "")
        host = self.exp.cas.get(end[0])
        return rack in self.scope.racks or (host is not None and host in self.scope.hosts)

    def sev(self, planned: list[PlannedLink], ends: list[End]) -> str:
        inside = any(self.scope.covers(pl) for pl in planned) or \
            any(self.in_scope_end(e) for e in ends)
        return "error" if inside else "warning"

    def open_plan(self, end: End) -> PlannedLink | None:
        """The planned cable at ``end`` when it is neither observed nor explained yet."""
        pl = self.exp.by_end.get(end)
        if pl is None or pl.key in self.seen or pl.key in self.used:
            return None
        return pl

    def pview(self, pl: PlannedLink) -> LinkView:
        return LinkView(pl.a[0], pl.a[1], pl.b[0], pl.b[1], pl.cable, pl.b_cage, pl.a_rack,
                        pl.b_rack, a_label=pl.a_label)

    def guid(self, key: str) -> str | None:
        return self.topo.devices[key].guid

    def oview(self, o: Obs) -> LinkView:
        lo, up, lk = o
        lo_key = self.ident.key_of.get(lo[0], "")
        up_key = self.ident.key_of.get(up[0], "")
        return LinkView(lo[0], lo[1], up[0], up[1], width=lk.width, speed=lk.speed,
                        a_guid=self.guid(lo_key) if lo_key else None,
                        b_guid=self.guid(up_key) if up_key else None)

    def raw_view(self, lk: ObservedLink) -> LinkView:
        da, db = self.topo.devices[lk.a], self.topo.devices[lk.b]
        na = self.ident.name_of.get(lk.a, da.desc)
        nb = self.ident.name_of.get(lk.b, db.desc)
        return LinkView(na, lk.a_port, nb, lk.b_port, width=lk.width, speed=lk.speed,
                        a_guid=da.guid, b_guid=db.guid)

    def add(self, kind: str, severity: str, message: str, rack: str,
            planned: list[PlannedLink], observed: list[LinkView],
            devices: tuple[str, ...] = ()) -> None:
        self.findings.append(Finding(
            kind, severity, message, rack, tuple(pl.cable for pl in planned),
            tuple(self.pview(pl) for pl in planned), tuple(observed), devices))

    # -- steps -----------------------------------------------------------------------------
    def matched(self) -> int:
        n = 0
        for i, o in enumerate(self.obs):
            lo, up, lk = o
            pl = self.exp.links.get(link_key(lo, up))
            if pl is None:
                continue
            self.done.add(i)
            n += self.scope.covers(pl)
            sev = self.sev([pl], [])
            if lk.width is not None and lk.width != WIDTH:
                self.add("wrong-width", sev, f"{pl.cable}: link up at {lk.rate}, planned "
                         f"{WIDTH}{self.exp.speed}", pl.a_rack, [pl], [self.oview(o)])
            if lk.speed is not None and lk.speed != self.exp.speed:
                self.add("wrong-speed", sev, f"{pl.cable}: link up at {lk.rate}, planned "
                         f"{WIDTH}{self.exp.speed}", pl.a_rack, [pl], [self.oview(o)])
        return n

    def swaps(self) -> None:
        for i, (lo, up, _) in enumerate(self.obs):
            if i in self.done:
                continue
            pa, pb = self.open_plan(lo), self.open_plan(up)
            if pa is None or pb is None or pa is pb:
                continue
            want_a, b_lower = pa.other(lo), pb.other(up)
            j = self.obs_at.get(b_lower)
            if j is None or j in self.done or self.obs[j][:2] != \
                    self.exp.lower_first(b_lower, want_a):
                continue
            self.done.update((i, j))
            self.used.update((pa.key, pb.key))
            first, second = sorted([(pa, lo, up, want_a), (pb, b_lower, want_a, up)],
                                   key=lambda t: t[0].cable)
            msg = (f"cables {first[0].cable} and {second[0].cable} are swapped: "
                   f"{_fmt(first[1])} is on {_fmt(first[2])} (planned {_fmt(first[3])}), "
                   f"{_fmt(second[1])} is on {_fmt(second[2])} (planned {_fmt(second[3])})")
            self.add("swapped", self.sev([pa, pb], [lo, up, b_lower, want_a]), msg,
                     first[0].a_rack, [first[0], second[0]],
                     [self.oview(self.obs[i]), self.oview(self.obs[j])])

    def landed_elsewhere(self) -> None:
        for i, (lo, up, _) in enumerate(self.obs):
            pl = self.open_plan(lo)
            if i in self.done or pl is None:
                continue
            want = pl.other(lo)
            if pl.kind in ("node-leaf", "ufm-leaf") and up[0] != want[0]:
                kind, group = "wrong-leaf", self.leaf_group.get(up[0], "")
                where = f"{_fmt(up)}" + (f" ({group})" if group else "")
                msg = f"{pl.cable}: {_fmt(lo)} is on {where}; planned {_fmt(want)}"
            else:
                kind = "wrong-port" if up[0] == want[0] else "miscabled"
                msg = f"{pl.cable}: {_fmt(lo)} is on {_fmt(up)}; planned {_fmt(want)}"
            self.explain(i, pl, kind, msg, [lo, up])
        for i, (lo, up, _) in enumerate(self.obs):
            pl = self.open_plan(up)
            if i in self.done or pl is None:
                continue
            want = pl.other(up)
            kind = "wrong-port" if lo[0] == want[0] else "miscabled"
            msg = f"{pl.cable}: {_fmt(up)} holds {_fmt(lo)}; planned {_fmt(want)}"
            self.explain(i, pl, kind, msg, [lo, up])

    def explain(self, i: int, pl: PlannedLink, kind: str, msg: str, ends: list[End]) -> None:
        self.done.add(i)
        self.used.add(pl.key)
        self.add(kind, self.sev([pl], ends), msg, pl.a_rack, [pl], [self.oview(self.obs[i])])

    def devices(self) -> None:
        by_dev: dict[str, list[ObservedLink]] = defaultdict(list)
        for lk in self.loose:
            for key in (lk.a, lk.b):
                if key not in self.ident.name_of:
                    by_dev[key].append(lk)
        self.unknown_devices(by_dev)
        self.duplicate_descriptions(by_dev)

    def unknown_devices(self, by_dev: dict[str, list[ObservedLink]]) -> None:
        for key in self.ident.unknown:
            dev = self.topo.devices[key]
            planned, ends, places = self.occupied(key, by_dev[key])
            kind = {"ca": "CA", "switch": "switch"}.get(dev.kind, dev.kind)
            where = ", ".join(places[:3]) + (f" and {len(places) - 3} more"
                                              if len(places) > 3 else "")
            msg = f"unknown {kind} {dev.desc!r} ({dev.guid or 'no GUID'})" + \
                (f" on {where}" if where else " with no cabled port")
            rack = self.exp.racks.get(ends[0][0], "") if ends else ""
            self.add("unknown-device", self.sev(planned, ends), msg, rack, planned,
                     [self.raw_view(lk) for lk in by_dev[key]], (dev.guid or key,))

    def duplicate_descriptions(self, by_dev: dict[str, list[ObservedLink]]) -> None:
        for name, keys in sorted(self.ident.duplicates.items()):
            planned: list[PlannedLink] = []
            ends: list[End] = []
            parts: list[str] = []
            for key in keys:
                guid = self.guid(key) or key
                got = self.ident.name_of.get(key)
                if got is not None:
                    ends.extend((got, p) for p in self.topo.devices[key].ports)
                    parts.append(f"{guid} is {got}" + (" (cabled as planned)" if got == name
                                                        else " by its cabling"))
                    continue
                more_planned, more_ends, where = self.occupied(key, by_dev[key])
                planned += more_planned
                ends += more_ends
                parts.append(f"{guid} on {', '.join(where) or 'nothing'} is unresolved")
            pl = self.exp.by_end.get((name, 1))
            scope_links = planned + ([pl] if pl is not None else [])
            msg = f"{len(keys)} devices carry the description {name!r}: " + "; ".join(parts)
            self.add("duplicate-description", self.sev(scope_links, ends), msg,
                     self.exp.racks.get(name, ""), planned,
                     [self.raw_view(lk) for k in keys for lk in by_dev.get(k, [])],
                     tuple(self.guid(k) or k for k in keys))

    def occupied(self, key: str, links: list[ObservedLink]
                 ) -> tuple[list[PlannedLink], list[End], list[str]]:
        """Planned cables whose ports an unnamed device ``key`` sits on, and where it sits."""
        planned: list[PlannedLink] = []
        ends: list[End] = []
        places: list[str] = []
        for lk in links:
            peer, pport = (lk.b, lk.b_port) if lk.a == key else (lk.a, lk.a_port)
            end = self.ident.end(peer, pport)
            if end is None:
                continue
            ends.append(end)
            pl = self.open_plan(end)
            if pl is not None:
                self.used.add(pl.key)
                planned.append(pl)
                places.append(f"{_fmt(end)} (planned for {pl.cable})")
            else:
                places.append(_fmt(end))
        return planned, ends, places

    def leftovers(self) -> None:
        for i, o in enumerate(self.obs):
            if i in self.done:
                continue
            lo, up, _ = o
            self.add("unexpected", self.sev([], [lo, up]),
                     f"unplanned cable {_fmt(lo)} - {_fmt(up)}",
                     self.exp.racks.get(lo[0], ""), [], [self.oview(o)])
        for key, pl in self.exp.links.items():
            if key in self.seen or key in self.used:
                continue
            if not self.scope.covers(pl):
                self.add("not-yet-present", "info", f"{pl.cable}: not yet present "
                         "(outside the scope)", pl.a_rack, [pl], [])
                continue
            notes = []
            for end in (pl.a, pl.b):
                j = self.obs_at.get(end)
                if j is not None:
                    lo, up, _ = self.obs[j]
                    notes.append(f"{_fmt(end)} is cabled to {_fmt(up if end == lo else lo)}")
            msg = f"{pl.cable}: {_fmt(pl.a)} - {_fmt(pl.b)} not found" + \
                (f" ({'; '.join(notes)})" if notes else "")
            self.add("missing", "error", msg, pl.a_rack, [pl], [])


def verify(topo: Topology, exp: Expected, scope: Scope | None = None) -> VerifyResult:
    """Check ``topo`` against the planned fabric ``exp`` within ``scope`` (default: all)."""
    scope = scope or Scope()
    v = _Verifier(topo, exp, scope)
    matched = v.matched()
    v.swaps()
    v.landed_elsewhere()
    v.devices()
    v.leftovers()
    where = scope.describe() if exp.fabric == "compute" \
        else f"{exp.fabric} fabric, {scope.describe()}"
    result = VerifyResult(exp.site, where, exp.speed,
                          sorted(v.findings, key=lambda f: f.sort_key),
                          sum(1 for pl in exp.links.values() if scope.covers(pl)),
                          len(exp.links), matched, len(topo.links),
                          sum(1 for d in topo.devices.values() if d.seen))
    for name, key in sorted(v.ident.inferred.items()):
        dev = topo.devices[key]
        result.inferred[name] = {"guid": dev.guid or "", "desc": dev.desc}
    result.guids = learned_guids(topo, v.ident)
    return result


def learned_guids(topo: Topology, ident: Identity) -> dict[str, str]:
    """``{device name: node GUID}`` of every named device, plus ``"<name>[<port>]"`` port
    GUIDs of CAs whose port GUID is not ``node GUID + port`` (the form
    :func:`provision.render.ibsim.port_guid` reads)."""
    out: dict[str, str] = {}
    for key, name in ident.name_of.items():
        dev = topo.devices[key]
        if dev.guid is None:
            continue
        out[name] = dev.guid
        if dev.kind != "switch":
            base = int(dev.guid, 16)
            for port, pg in dev.port_guids.items():
                if int(pg, 16) != base + port:
                    out[f"{name}[{port}]"] = pg
    return dict(sorted(out.items()))
