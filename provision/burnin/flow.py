"""The order of a burn-in level: node checks, pairwise IB, rack/leaf NCCL, isolation, soak.

``execute(runner)`` drives a :class:`~provision.burnin.runner.Runner` through one pass (or,
for ``soak``, passes until the duration is spent) and returns every verdict, judged from the
stored outputs, with fleet-relative outliers and the soak trend applied.
"""

from __future__ import annotations

import time

from provision.burnin import evaluate as ev
from provision.burnin import judge as j
from provision.burnin.runner import Collective, Outcome, Runner
from provision.burnin.schedule import leaf_groups


def _collective_verdicts(coll: Collective, o: Outcome, test: str, floor: float
                         ) -> list[j.Verdict]:
    """Member verdicts of one collective; after a failure, from its isolation.

    A suspect that could not be separated fails when it has failures of its own; one with
    none is a warning (inconclusive: too few good nodes to test it against), not a pass."""
    failing = {v.node for v in o.verdicts if v.failed}
    members = len(coll.members)
    if coll.ok:
        return [j.Verdict(n, test, j.PASS, f"{coll.label}: {coll.why} ({members} nodes)",
                          metric="busbw_gbps", value=coll.busbw, threshold=floor)
                for n in coll.members]
    iso = o.isolations.get(coll.label)
    if iso is None:
        return [j.Verdict(n, test, j.FAIL, f"{coll.label}: {coll.why} ({members} nodes)",
                          metric="busbw_gbps", value=coll.busbw, threshold=floor,
                          fix="isolate the slow member: rerun with fewer nodes")
                for n in coll.members]
    out: list[j.Verdict] = []
    cost = f"{iso.rounds} rounds, {iso.tests} tests"
    for n in iso.bad:
        how = "confirmed with a known-good partner" if n in iso.confirmed else "unconfirmed"
        rails = sorted({v.rail for v in o.verdicts if v.node == n and v.failed and v.rail})
        on = f"; its failing rails: {', '.join(rails)}" if rails else ""
        out.append(j.Verdict(n, test, j.FAIL, f"{coll.label} failed ({coll.why}); isolated "
                             f"to this node by bisection ({cost}, {how}){on}",
                             rail=rails[0] if len(rails) == 1 else None,
                             fix="check its HCAs/cables and GPUs; the collective runs at "
                             "the speed of its slowest member"))
    for n in iso.suspects:
        out.append(j.Verdict(n, test, j.FAIL if n in failing else j.WARN,
                             f"{coll.label} failed ({coll.why}); could not be separated from "
                             "the other suspects (no known-good partner)"
                             + ("" if n in failing else "; inconclusive for this node, which "
                                "passed every other test"),
                             fix="fix the failed nodes, then rerun the rack collective"))
    for n in iso.good:
        out.append(j.Verdict(n, test, j.PASS, f"{coll.label} failed, but this node passed "
                             "in a subgroup during isolation"))
    return out


def one_pass(r: Runner, prefix: str) -> Outcome:
    cfg, o = r.cfg, Outcome()
    th = cfg.thresholds
    r.node_phase(prefix)
    outputs = [u for k, u in sorted(r.done.items()) if k.startswith(prefix)]
    o.verdicts = ev.judge_nodes(cfg.targets, [u for u in outputs if "/node/" in f"/{u.unit}"
                                              and not u.unit.startswith("coll")], th)
    if cfg.level == "quick":
        return o
    down = {(v.node, v.rail): "down" if " is " in v.reason else "missing"
            for v in o.verdicts if v.test == "ib-port" and v.failed and v.rail
            and v.metric != "rate_gbps"}
    r.pair_phase(prefix, down)
    outputs = [u for k, u in sorted(r.done.items()) if k.startswith(prefix)]
    o.pairs, per_node = ev.judge_pairs(outputs, th)
    o.verdicts += per_node
    o.excluded = ev.blocked(o.verdicts)
    for node in sorted(ev.no_active_hca(o.verdicts, cfg.targets)):
        o.excluded.setdefault(node, "no active compute HCA")
    eligible = [t.name for t in cfg.targets if t.name not in o.excluded]
    for node, why in sorted(o.excluded.items()):
        o.verdicts.append(j.Verdict(node, "nccl-rack", j.SKIP, f"kept out of multi-node "
                                    f"NCCL: {why}"))
    if len(eligible) < 2:
        o.notes.append(f"multi-node NCCL skipped: {len(eligible)} node(s) can run a "
                       "collective (need 2)")
        return o
    floor = th.nccl_multi_busbw_gbps
    rack = r.collective(prefix, f"rack-{cfg.rack}", eligible, "all_reduce_perf", o)
    o.verdicts += _collective_verdicts(rack, o, "nccl-rack", floor)
    bad = set(o.isolations[rack.label].bad) | set(o.isolations[rack.label].suspects) \
        if rack.label in o.isolations else set()
    good = [n for n in eligible if n not in bad]
    leaf_of = {t.name: t.leaf for t in cfg.targets}
    groups = {leaf: m for leaf, m in leaf_groups(good, leaf_of).items() if len(m) >= 2}
    if groups and [set(m) for m in groups.values()] != [set(good)]:
        for leaf, members in groups.items():
            others = [n for n in good if n not in members]
            coll = r.collective(prefix, f"leaf-{leaf}", members, "all_reduce_perf", o,
                                known_good=others)
            o.verdicts += _collective_verdicts(coll, o, "nccl-leaf", floor)
    if cfg.level == "full":
        if len(good) >= 2:
            a2a = r.collective(prefix, f"rack-{cfg.rack}-a2a", good, "all_to_all_perf", o)
            o.verdicts += _collective_verdicts(a2a, o, "nccl-a2a", floor * 0.75)
        if cfg.cross_partner is not None and good:
            pair = [good[0], cfg.cross_partner.name]
            cross = r.collective(prefix, "cross-rack", pair, "all_reduce_perf", o)
            o.verdicts += [v for v in _collective_verdicts(cross, o, "nccl-cross", floor)
                           if v.node == good[0]]
        else:
            o.notes.append("cross-rack NCCL skipped: no GPU node in another rack")
    return o


def _trend(passes: list[Outcome], fraction: float) -> list[j.Verdict]:
    """Nodes whose single-node busbw fell below ``fraction`` x their first soak pass."""
    def busbw(o: Outcome) -> dict[str, float]:
        return {v.node: v.value for v in o.verdicts
                if v.test == "nccl-single" and v.value is not None}
    first, last = busbw(passes[0]), busbw(passes[-1])
    out = []
    for node, start in sorted(first.items()):
        end = last.get(node)
        if end is not None and end < fraction * start:
            out.append(j.Verdict(node, "soak-trend", j.FAIL, f"nccl-single busbw fell from "
                                 f"{start:.1f} to {end:.1f} GB/s over {len(passes)} passes",
                                 metric="busbw_gbps", value=end,
                                 threshold=round(fraction * start, 3),
                                 fix="check cooling and power capping (thermal throttling)"))
    return out


def execute(r: Runner) -> Outcome:
    """Run the configured level; soak repeats ``standard`` until ``soak_s`` is spent (and
    at least ``soak_min_passes`` times, so that there is a trend to judge)."""
    cfg = r.cfg
    start = time.monotonic()
    passes: list[Outcome] = []
    while True:
        prefix = f"soak{len(passes):03d}/" if cfg.level == "soak" else ""
        passes.append(one_pass(r, prefix))
        if cfg.level != "soak" or (time.monotonic() - start >= cfg.soak_s
                                   and len(passes) >= cfg.soak_min_passes):
            break
    total = Outcome()
    for i, o in enumerate(passes):
        tag = f"soak pass {i + 1}: " if cfg.level == "soak" else ""
        total.verdicts += [v if not tag else j.Verdict(
            v.node, v.test, v.status, tag + v.reason, v.rail, v.metric, v.value, v.threshold,
            v.peer, v.fix) for v in o.verdicts]
        total.pairs += o.pairs
        total.collectives += o.collectives
        total.isolations.update({f"{tag}{k}": v for k, v in o.isolations.items()})
        total.excluded.update(o.excluded)
        total.notes += [tag + n for n in o.notes]
    if cfg.level == "soak":
        total.verdicts += _trend(passes, cfg.thresholds.outlier_fraction)
    stats = j.FleetStats.of(total.verdicts)
    total.verdicts = j.outliers(total.verdicts, stats, cfg.thresholds)
    total.versions = ev.versions(r.done.values())
    return total
