"""Semantic lint rules over a schema-valid site: stable codes, positions and fix hints.

Codes (stable; scripts match on them). GPU00x come from reading and schema validation
(provision/loader.py, model validators), GPU1xx from the rules here and in lint_*.py:
GPU001 unreadable/invalid YAML · GPU002 schema · GPU003 duplicate YAML key / merge key
GPU004 non-finite number (.inf, .nan, 1e400) · GPU005 text YAML read as a number/date (quote it)
GPU101 rack over power budget · GPU102 hall over capacity · GPU103 site over capacity
GPU104 cooling cannot carry rack density · GPU105 liquid-cooled node in a non-liquid rack
GPU106 rack load over what one feed's PDUs deliver (N+N) · GPU107 too few PDU outlets (C13/C19)
GPU108 PSUs not spread over A and B feeds (one PDU, or a one-PSU device)
GPU109 PUE target implausible for the climate (warning)
GPU110 PSUs on one feed cannot carry the node's max power: capped on a feed loss (warning)
GPU111 node does not fit its rack (U) · GPU112 not enough racks for the count
GPU113 two nodes overlap in a rack · GPU114 two node groups share rack units
GPU115 rows (or halls) on the same floor position
GPU116 the two switches of an aggregation/core pair share one rack (pairs_in_one_rack unset)
GPU117 unknown catalog PDU type (a rack spec's pdu)
GPU121 unknown hall/row · GPU122 unknown node group · GPU123 unknown rack
GPU124 unknown catalog node type · GPU125 unknown catalog switch type
GPU126 a catalog entry names an unknown SKU (a cable's transceiver)
GPU127 node group references an unknown image
GPU128 role gpu on a node type without GPUs · GPU129 node group without HCAs on an IB fabric
GPU131 duplicate name · GPU132 duplicate hostname · GPU133 hostname/rack_names pattern error
GPU134 hostname (or domain) not a DNS label · GPU135 rack name not a DNS label
GPU140 last scalable unit mostly empty (warning)
GPU141 fabric cannot be built (radix/tiers) · GPU142 switch/fabric/link speed mismatch
GPU143 planes do not match HCAs · GPU144 no rack space / cable reach for switches
GPU145 BMCs without OOB reach (no oob, per_rack 0, racks without uplinks)
GPU146 InfiniBand switch used as an Ethernet ToR/aggregation switch
GPU147 node group on two InfiniBand fabrics · GPU148 reserved InfiniBand fabric name
GPU149 UFM ports on a further InfiniBand fabric (fabrics.infiniband)
GPU150 more nodes on a fabric than its design capacity (warning)
GPU154 rows do not hold a fabric's design capacity yet (warning)
GPU155 Ethernet tier oversubscribed past the network's max_oversubscription (warning)
GPU153 addressing.ipoib_fabrics names an InfiniBand fabric the site does not have
GPU151 address pool too small · GPU152 address pools overlap
GPU161 fabric manager version != driver · GPU162 CUDA newer than the driver branch supports
GPU163 unknown or end-of-life driver branch · GPU164 kernel modules unsupported by GPU
GPU165 driver version not on its branch · GPU166 NCCL build not published for CUDA
GPU167 unknown burn-in profile · GPU168 driver branch too old for the GPU generation

Severity is "error" unless a rule says "warning" (lint exits 0 on warnings unless --strict).
Findings of one code at one position are grouped (lintbase.group): one line, a count and
the first examples. Rules live in this module and in lint_cabling, lint_facility, lint_fabrics,
lint_growth, lint_names, lint_network and lint_roles; each registers itself with ``@rule``
from lintbase. lint_devices holds the rules that read the built plan (called from lint()).
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import netaddr

from provision.errors import PlanError
from provision.loader import LoadedSite, Loc
from provision.models.site import ComputeFabric
from provision.plan import (  # noqa: F401  (their rules)
    lint_cabling,
    lint_fabrics,
    lint_facility,
    lint_growth,
    lint_names,
    lint_network,
    lint_roles,
)
from provision.plan.build import Plan, build_plan
from provision.plan.layout import layout_racks, slot_indices, su_breaks
from provision.plan.lint_devices import feed_findings, oversubscription_findings, pair_findings
from provision.plan.lintbase import RULES, Finding, finding, group, rule
from provision.plan.power import COOLING_LIMIT_KW
from provision.plan.versions import matrix, version_tuple

KNOWN_PROFILES = ("a100-hdr", "h100-ndr", "h200-ndr", "b200-ndr", "b200-xdr", "gb200-nvl72")


def _f(code: str, message: str, hint: str, *loc: str | int, subject: str = "") -> Finding:
    return finding(code, message, hint, *loc, subject=subject)


@rule
def names(ls: LoadedSite) -> Iterator[Finding]:
    s = ls.site
    for what, items, loc in [("hall", [h.name for h in s.halls], "halls"),
                             ("node group", [g.name for g in s.node_groups], "node_groups"),
                             ("image", [m.name for m in s.images], "images")]:
        for i, n in enumerate(items):
            if items.index(n) != i:
                yield _f("GPU131", f"duplicate {what} name {n!r}", "give each a unique name",
                         loc, i, "name")
    for hi, h in enumerate(s.halls):
        rows = [r.name for r in h.rows]
        for ri, n in enumerate(rows):
            if rows.index(n) != ri:
                yield _f("GPU131", f"duplicate row {n!r} in hall {h.name}", "rename the row",
                         "halls", hi, "rows", ri, "name")
    racks = Counter(r.name for r in layout_racks(s))
    for n, c in sorted(racks.items()):
        if c > 1:
            yield _f("GPU131", f"rack name {n!r} is used {c} times",
                     "set rack_names to include {hall} and {row}", "halls")


@rule
def references(ls: LoadedSite) -> Iterator[Finding]:
    s, cat = ls.site, ls.catalog
    halls = {h.name: h for h in s.halls}
    groups = {g.name for g in s.node_groups}
    for gi, g in enumerate(s.node_groups):
        if g.type not in cat.nodes:
            yield _f("GPU124", f"node group {g.name} references unknown catalog type {g.type!r}",
                     f"use one of {', '.join(sorted(cat.nodes))} or add it to a catalog file",
                     "node_groups", gi, "type")
        if g.image is not None and g.image not in {m.name for m in s.images}:
            yield _f("GPU127", f"node group {g.name} references unknown image {g.image!r}",
                     f"use one of {', '.join(sorted(m.name for m in s.images)) or '(none)'} "
                     "or add it under images:", "node_groups", gi, "image")
        hall = halls.get(g.placement.hall)
        if hall is None:
            yield _f("GPU121", f"node group {g.name} references unknown hall "
                     f"{g.placement.hall!r}", f"use one of {', '.join(sorted(halls))}",
                     "node_groups", gi, "placement", "hall")
            continue
        rows = {r.name for r in hall.rows}
        for ri, r in enumerate(g.placement.rows):
            if r not in rows:
                yield _f("GPU121", f"node group {g.name} references unknown row {r!r} in hall "
                         f"{hall.name}", f"use one of {', '.join(sorted(rows))}",
                         "node_groups", gi, "placement", "rows", ri)
    rack_names = {r.name for r in layout_racks(s)}
    sections: list[tuple[str, Loc, object]] = [
        (fname, ("fabrics", fname), getattr(s.fabrics, fname))
        for fname in ("compute", "storage", "inband", "oob")]
    sections += [(n, ("fabrics", "infiniband", n), f) for n, f in s.fabrics.infiniband.items()]
    for fname, floc, f in sections:
        if f is None:
            continue
        for attr in ("switch", "spine_switch"):
            sku = getattr(f, attr, None)
            if sku is not None and sku not in cat.switches:
                yield _f("GPU125", f"{fname} fabric references unknown switch type {sku!r}",
                         f"use one of {', '.join(sorted(cat.switches))}", *floc, attr)
        for ri, ref in enumerate(getattr(f, "network_racks", [])):
            ok = ref in rack_names or ("/" in ref and ref.split("/", 1)[0] in halls and
                                       ref.split("/", 1)[1] in {r.name for r in
                                                                halls[ref.split("/", 1)[0]].rows})
            if not ok:
                yield _f("GPU123", f"{fname} fabric network_racks entry {ref!r} is not a rack "
                         "or hall/row of this site", "name an existing rack or hall/row",
                         *floc, "network_racks", ri)
        for gi, g in enumerate(getattr(f, "node_groups", [])):
            if g not in groups:
                yield _f("GPU122", f"{fname} fabric references unknown node group {g!r}",
                         f"use one of {', '.join(sorted(groups))}",
                         *floc, "node_groups", gi)


@rule
def fit(ls: LoadedSite) -> Iterator[Finding]:
    s, cat = ls.site, ls.catalog
    rows = {(h.name, r.name): r for h in s.halls for r in h.rows}
    breaks = su_breaks(s, cat)
    for gi, g in enumerate(s.node_groups):
        t = cat.nodes.get(g.type)
        if t is None:
            continue
        p = g.placement
        row_specs = [rows[(p.hall, r)] for r in p.rows if (p.hall, r) in rows]
        for ui, u in enumerate(p.u_positions):
            for row in row_specs:
                if u + t.rack_units - 1 > row.rack.size_u:
                    yield _f("GPU111", f"node group {g.name}: a {t.rack_units}U {t.name} at U{u} "
                             f"ends at U{u + t.rack_units - 1}, above the {row.rack.size_u}U "
                             f"racks of row {row.name}", "lower the U position or use taller racks",
                             "node_groups", gi, "placement", "u_positions", ui)
                    break
        spans = sorted((u, u + t.rack_units - 1) for u in p.u_positions)
        for (a0, a1), (b0, _) in zip(spans, spans[1:], strict=False):
            if b0 <= a1:
                yield _f("GPU113", f"node group {g.name}: nodes at U{a0} and U{b0} overlap "
                         f"({t.rack_units}U each)", f"space slots at least {t.rack_units}U apart",
                         "node_groups", gi, "placement", "u_positions", subject=f"U{b0}")
        have = sum(max(0, rows[(p.hall, r)].racks - (p.first_rack - 1 if i == 0 else 0))
                   for i, r in enumerate(p.rows) if (p.hall, r) in rows)
        capacity = have * p.nodes_per_rack
        where = slot_indices(g.count, p.nodes_per_rack, breaks.get(g.name)) \
            if g.name in breaks and g.count <= capacity else []
        need = where[-1] // p.nodes_per_rack + 1 if where else 0
        if row_specs and capacity < g.count:
            yield _f("GPU112", f"node group {g.name}: {g.count} nodes but rows "
                     f"{', '.join(p.rows)} hold {capacity} at {p.nodes_per_rack} per rack",
                     "add racks or rows, or raise nodes_per_rack", "node_groups", gi, "count")
        elif row_specs and have < need:
            yield _f("GPU112", f"node group {g.name}: {g.count} nodes need {need} racks at "
                     f"{p.nodes_per_rack} per rack because each scalable unit starts a rack; "
                     f"rows {', '.join(p.rows)} have {have}",
                     "add racks, or choose nodes_per_rack dividing su_size",
                     "node_groups", gi, "count")
        if t.liquid_cooled:
            for row in row_specs:
                if row.rack.cooling == "air":
                    yield _f("GPU105", f"node group {g.name}: {t.name} needs liquid cooling but "
                             f"row {row.name} is air-cooled", "use liquid or hybrid racks",
                             "node_groups", gi, "type")
                    break


@rule
def versions(ls: LoadedSite) -> Iterator[Finding]:
    sw = ls.site.software
    m = matrix()
    br = m.branches.get(sw.driver_branch)
    if br is None:
        yield _f("GPU163", f"driver branch R{sw.driver_branch} is not in the version matrix",
                 f"use one of {', '.join(f'R{b}' for b in sorted(m.branches))}",
                 "software", "driver_branch")
    else:
        if datetime.date.fromisoformat(str(br["eol"])) < datetime.date.today():
            yield _f("GPU163", f"driver branch R{sw.driver_branch} reached end of life on "
                     f"{br['eol']}", "move to a supported LTSB or production branch",
                     "software", "driver_branch")
        if version_tuple(sw.cuda) > version_tuple(str(br["max_cuda"])):
            yield _f("GPU162", f"CUDA {sw.cuda} is newer than driver branch R{sw.driver_branch} "
                     f"supports (max {br['max_cuda']})", "use a newer driver branch or older CUDA",
                     "software", "cuda")
    if not sw.driver_version.startswith(f"{sw.driver_branch}."):
        yield _f("GPU165", f"driver version {sw.driver_version} is not on branch "
                 f"R{sw.driver_branch}", f"use a {sw.driver_branch}.x version",
                 "software", "driver_version")
    if sw.fabric_manager is not None and sw.fabric_manager != sw.driver_version:
        yield _f("GPU161", f"fabric manager {sw.fabric_manager} != driver {sw.driver_version}; "
                 "Fabric Manager refuses to start unless versions match exactly",
                 "remove fabric_manager or set it to the driver version",
                 "software", "fabric_manager")
    cudas = m.nccl_cuda.get(sw.nccl)
    if cudas is not None and sw.cuda not in cudas:
        yield _f("GPU166", f"NCCL {sw.nccl} is not published for CUDA {sw.cuda} "
                 f"(builds: {', '.join(cudas)})", "pick an NCCL release built for this CUDA",
                 "software", "nccl")
    gens = {gen for g in ls.site.node_groups if g.type in ls.catalog.nodes
            and (gen := ls.catalog.nodes[g.type].gpu_generation) is not None}
    for gen in sorted(gens):
        info = m.generations[gen]
        if sw.kernel_modules != "auto" and sw.kernel_modules not in info["kernel_modules"]:
            yield _f("GPU164", f"{gen} GPUs do not support {sw.kernel_modules} kernel modules",
                     f"use {' or '.join(info['kernel_modules'])}", "software", "kernel_modules")
        if sw.driver_branch < int(info["min_branch"]):
            yield _f("GPU168", f"{gen} GPUs need driver branch R{info['min_branch']} or newer",
                     "raise driver_branch", "software", "driver_branch")
    if ls.site.burnin.profile not in KNOWN_PROFILES:
        yield _f("GPU167", f"unknown burn-in profile {ls.site.burnin.profile!r}",
                 f"use one of {', '.join(KNOWN_PROFILES)}", "burnin", "profile")


@rule
def fabric_speed(ls: LoadedSite) -> Iterator[Finding]:
    for name, loc, cf in lint_fabrics.ib_sections(ls):
        yield from _ib_speed(ls, name, loc, cf)


def _ib_speed(ls: LoadedSite, name: str, loc: Loc, cf: ComputeFabric) -> Iterator[Finding]:
    if cf.switch not in ls.catalog.switches:
        return
    sw = ls.catalog.switches[cf.switch]
    if sw.technology != "infiniband":
        yield _f("GPU142", f"{name} fabric switch {sw.name} is {sw.technology}, not InfiniBand",
                 "use an InfiniBand switch such as qm9700", *loc, "switch")
    elif sw.ib_speed != cf.speed:
        yield _f("GPU142", f"{name} fabric speed {cf.speed} but {sw.name} runs {sw.ib_speed}",
                 f"set speed: {sw.ib_speed} or choose a {cf.speed} switch", *loc, "speed")
    if cf.topology == "multi-plane":
        for _gi, g in enumerate(ls.site.node_groups):
            t = ls.catalog.nodes.get(g.type)
            if g.name in cf.node_groups and t and len(t.compute_hcas) != cf.planes:
                yield _f("GPU143", f"{'' if name == 'compute' else name + ' '}multi-plane fabric has {cf.planes} planes but "
                         f"{t.name} has {len(t.compute_hcas)} HCAs",
                         f"set planes: {len(t.compute_hcas)}", *loc, "planes")


@rule
def pools(ls: LoadedSite) -> Iterator[Finding]:
    a = ls.site.addressing
    named: list[tuple[str, Loc, str]] = [("oob", ("addressing", "oob"), a.oob),
                                         ("inband", ("addressing", "inband"), a.inband),
                                         ("switch_mgmt", ("addressing", "switch_mgmt"), a.switch_mgmt),
                                         ("pod_cidr", ("addressing", "pod_cidr"), a.pod_cidr),
                                         ("service_cidr", ("addressing", "service_cidr"),
                                          a.service_cidr)]
    if a.storage:
        named.append(("storage", ("addressing", "storage"), a.storage))
    named += [(f"ipoib[{i}]", ("addressing", "ipoib", i), c) for i, c in enumerate(a.ipoib)]
    named += [(f"ipoib_fabrics.{f}[{i}]", ("addressing", "ipoib_fabrics", f, i), c)
              for f, pools in a.ipoib_fabrics.items() for i, c in enumerate(pools)]
    for i, (n1, loc1, c1) in enumerate(named):
        for n2, _, c2 in named[i + 1:]:
            x, y = netaddr.IPNetwork(c1), netaddr.IPNetwork(c2)
            if x.first <= y.last and y.first <= x.last:
                yield Finding("GPU152", f"address pool {n1} ({c1}) overlaps {n2} ({c2})",
                              "give every pool its own range", loc1, subject=n2)


_POOL_RE = re.compile(r"address pool (\w+)")
_FABRIC_RE = re.compile(r"^(?:fabric )?(compute|storage|inband|oob)")


def plan_findings(ls: LoadedSite) -> tuple[Plan | None, list[Finding]]:
    """Try to build the plan; a site that cannot be built is a finding, not a traceback."""
    try:
        return build_plan(ls.site, ls.catalog), []
    except PlanError as exc:
        msg = str(exc)
        if (m := _POOL_RE.search(msg)) is not None:
            pool = m.group(1)
            return None, [Finding("GPU151", msg, "use a larger pool", ("addressing", pool))]
        if exc.hint:
            return None, [Finding("GPU141", exc.reason, exc.hint, _fabric_loc(ls, msg),
                                  fix_in_plan_error=True)]
        if "rack space" in msg or "cable" in msg or "run;" in msg:
            code, hint = "GPU144", "add network racks nearer the nodes"
        else:
            code, hint = "GPU141", "use a higher-radix switch, more tiers or fewer nodes"
        return None, [Finding(code, msg, hint, _fabric_loc(ls, msg))]


def _fabric_loc(ls: LoadedSite, msg: str) -> Loc:
    """The fabric a plan error names (``fabrics.oob``, ``fabrics.infiniband.zone2``)."""
    m2 = _FABRIC_RE.search(msg)
    loc: Loc = ("fabrics", m2.group(1)) if m2 else ("fabrics",)
    extra = next((n for n in ls.site.fabrics.infiniband if msg.startswith(f"{n} fabric")), None)
    if extra is not None:
        loc = ("fabrics", "infiniband", extra)
    return loc


def power_findings(ls: LoadedSite, plan: Plan) -> Iterator[Finding]:
    s = ls.site
    hall_idx = {h.name: i for i, h in enumerate(s.halls)}
    row_idx = {(h.name, r.name): (i, j) for i, h in enumerate(s.halls) for j, r in enumerate(h.rows)}
    for rp in plan.power.racks:
        hi, ri = row_idx[(rp.hall, rp.row)]
        if rp.nameplate_kw > rp.budget_kw:
            yield _f("GPU101", f"rack {rp.rack} draws {rp.nameplate_kw:g} kW nameplate, over its "
                     f"{rp.budget_kw:g} kW budget", "raise power_kw or put fewer nodes per rack",
                     "halls", hi, "rows", ri, "rack", "power_kw", subject=rp.rack)
        if rp.nameplate_kw > COOLING_LIMIT_KW[rp.cooling]:
            yield _f("GPU104", f"rack {rp.rack}: {rp.cooling} cooling carries at most "
                     f"{COOLING_LIMIT_KW[rp.cooling]:g} kW, the rack draws {rp.nameplate_kw:g} kW",
                     "use hybrid or liquid cooling, or spread the nodes", "halls", hi, "rows",
                     ri, "rack", "cooling", subject=rp.rack)
    for ru in plan.power.rollups:
        if ru.level == "hall" and ru.nameplate_kw > ru.capacity_kw:
            yield _f("GPU102", f"hall {ru.name} draws {ru.nameplate_kw:g} kW, over its "
                     f"{ru.capacity_kw:g} kW capacity", "raise power_capacity_kw or move racks",
                     "halls", hall_idx[ru.name], "power_capacity_kw")
    if plan.power.facility_kw > s.site.power_capacity_mw * 1000:
        yield _f("GPU103", f"site needs {plan.power.facility_kw / 1000:.2f} MW at PUE "
                 f"{s.site.pue_target:g}, over its {s.site.power_capacity_mw:g} MW capacity",
                 "raise power_capacity_mw or plan fewer nodes", "site", "power_capacity_mw")


def _hostnames(plan: Plan) -> Iterator[Finding]:
    seen: dict[str, str] = {}
    for n in plan.nodes:
        if n.name in seen:
            gi = [g.name for g in plan.site.node_groups].index(n.group)
            yield _f("GPU132", f"hostname {n.name} is used by groups {seen[n.name]} and {n.group}",
                     "make the hostname patterns distinct", "node_groups", gi, "hostname",
                     subject=n.name)
        seen[n.name] = n.group


def lint(ls: LoadedSite) -> tuple[Plan | None, list[Finding]]:
    """All findings for a schema-valid site, positioned, sorted by file position."""
    findings = [f for r in RULES for f in r(ls)]
    plan: Plan | None = None
    blocking = {"GPU112", "GPU121", "GPU122", "GPU123", "GPU124", "GPU125", "GPU142", "GPU143",
                "GPU129", "GPU147", "GPU148", "GPU149", "GPU117"}
    if not any(f.code in blocking for f in findings):
        plan, extra = plan_findings(ls)
        findings += extra
        if plan is not None:
            findings += list(power_findings(ls, plan))
            findings += list(pair_findings(ls, plan))
            findings += list(feed_findings(ls, plan))
            findings += list(oversubscription_findings(ls, plan))
            findings += list(_hostnames(plan))
    out = []
    for f in findings:
        p = ls.where(f.loc)
        out.append(replace(f, file=p.file, line=p.line, col=p.col))
    return plan, sorted(group(out), key=lambda f: (f.file, f.line, f.col, f.code, f.message))
