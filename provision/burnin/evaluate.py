"""Stored raw outputs -> verdicts (pure): parse each unit with its probe, then judge it.

Verdicts are always recomputed from the raw outputs in the store, so a resumed run and a
re-judged old run (new thresholds) give the same answer as a fresh one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provision.burnin import checks as ck
from provision.burnin import judge as j
from provision.burnin.probes import KINDS
from provision.burnin.probes.nccl import NcclResult, large_message_busbw
from provision.burnin.schedule import PairOutcome, attribute_pairs
from provision.burnin.store import UnitOutput
from provision.burnin.targets import NodeTarget
from provision.burnin.thresholds import Thresholds
from provision.errors import ParseError


def parsed(out: UnitOutput) -> Any:
    """The probe's parse of a unit's stdout; ParseError (naming the unit) when it fails."""
    try:
        return KINDS[out.kind](out.stdout)
    except ParseError as exc:
        tail = _last_line(out.stderr)
        raise ParseError(f"{out.unit}: exit {out.rc}: {exc}"
                         + (f" (stderr: {tail})" if tail else "")) from exc


_PROBLEM = re.compile(r"fail|error|warn|not found|down|unable|couldn't", re.IGNORECASE)


def _last_line(text: str) -> str:
    """The most telling line of stderr: the first that names a problem, else the last."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    telling = [ln for ln in lines if _PROBLEM.search(ln)]
    pick = telling[0] if telling else (lines[-1] if lines else "")
    return pick[:200]


def judge_node_unit(target: NodeTarget, out: UnitOutput, th: Thresholds) -> list[j.Verdict]:
    """Verdicts of one node-level unit (its check's judge; none for a check without one)."""
    check = ck.NODE_CHECK.get(out.test)
    if check is None or check.judge is None:
        return []
    try:
        result = parsed(out)
    except ParseError as exc:
        why = _last_line(out.stderr) or str(exc)
        return [j.probe_error(target.name, out.test, why)]
    return check.judge(target, result, th)


def judge_nodes(targets: Sequence[NodeTarget], outputs: Iterable[UnitOutput],
                th: Thresholds) -> list[j.Verdict]:
    by_name = {t.name: t for t in targets}
    out: list[j.Verdict] = []
    for unit in outputs:
        if unit.test in ck.NODE_CHECK and unit.node in by_name and not unit.peer:
            out += judge_node_unit(by_name[unit.node], unit, th)
    return out


def judge_pairs(outputs: Iterable[UnitOutput], th: Thresholds
                ) -> tuple[list[j.Verdict], list[j.Verdict]]:
    """(per-pair verdicts as measured, per-node verdicts after attributing blame)."""
    measured: list[j.Verdict] = []
    outcomes: list[PairOutcome] = []
    for unit in outputs:
        check = ck.PAIR_CHECK.get(unit.test)
        if check is None:
            continue
        try:
            verdicts = check.judge(unit.node, unit.peer, unit.rail, parsed(unit), th)
        except ParseError as exc:
            why = _last_line(unit.stderr) or str(exc)
            verdicts = [j.probe_error(unit.node, unit.test, f"{unit.rail} with {unit.peer}: "
                                      f"{why}", unit.rail, unit.peer)]
        measured += verdicts
        outcomes.append(PairOutcome(unit.rail, unit.peer, unit.node,
                                    not any(v.failed for v in verdicts)))
    per_node: list[j.Verdict] = []
    for blame in attribute_pairs(outcomes):  # bandwidth and latency evidence pooled per rail
        mine = [v for v in measured if v.failed and v.rail == blame.rail
                and blame.node in (v.node, v.peer)]
        certain = "" if blame.certain else " (either end; too few peers to tell)"
        for test in sorted({v.test for v in mine}):
            failures = [v for v in mine if v.test == test]
            peers = sorted({(v.peer or "") if v.node == blame.node else v.node for v in failures})
            worst = failures[0]
            per_node.append(j.Verdict(
                blame.node, test, j.FAIL, f"{blame.rail} failed with {', '.join(peers)}"
                f"{certain}: {worst.reason}", rail=blame.rail, metric=worst.metric,
                value=worst.value, threshold=worst.threshold, peer=peers[0], fix=worst.fix))
    blamed = {(v.node, v.test, v.rail) for v in per_node}
    for v in measured:
        for node in (v.node, v.peer or ""):
            if not v.failed and (node, v.test, v.rail) not in blamed:
                per_node.append(j.Verdict(node, v.test, j.PASS, v.reason, v.rail, v.metric,
                                          v.value, v.threshold, v.peer if node == v.node
                                          else v.node))
    return measured, per_node


def collective_busbw(out: UnitOutput, th: Thresholds) -> tuple[bool, float | None, str]:
    """(passed, large-message busbw, why) of a multi-node NCCL unit."""
    try:
        result: NcclResult = parsed(out)
    except ParseError:
        return False, None, _last_line(out.stderr) or f"exit {out.rc}, no nccl-tests report"
    if result.wrong_rows or result.out_of_bounds_ok is False:
        count = f", {result.wrong_elements} wrong elements" if result.wrong_elements else ""
        return False, None, f"FAILED data check, {result.wrong_rows} rows with wrong data{count}"
    busbw = large_message_busbw(result, th.nccl_large_bytes)
    if busbw is None:
        return False, None, "no large message size measured"
    ok = busbw >= th.nccl_multi_busbw_gbps
    return ok, busbw, (f"busbw {busbw:.1f} GB/s {'>=' if ok else '<'} "
                       f"{th.nccl_multi_busbw_gbps:g} floor")


def blocked(verdicts: Iterable[j.Verdict]) -> dict[str, str]:
    """Nodes that must stay out of collectives, with the first blocking reason."""
    out: dict[str, str] = {}
    for v in verdicts:
        if v.failed and v.test in ck.BLOCKING:
            out.setdefault(v.node, v.reason)
    return out


def no_active_hca(verdicts: Iterable[j.Verdict], targets: Sequence[NodeTarget]) -> set[str]:
    ok_ports: dict[str, int] = {}
    for v in verdicts:
        if v.test == "ib-port" and v.rail:
            ok_ports.setdefault(v.node, 0)
            if not v.failed or v.metric == "rate_gbps":
                ok_ports[v.node] += 1
    return {t.name for t in targets if t.hcas and ok_ports.get(t.name, 0) == 0}


def versions(outputs: Iterable[UnitOutput]) -> dict[str, dict[str, str]]:
    """Tool versions per node, from the outputs of the checks that report them."""
    found: dict[str, dict[str, str]] = {}
    for unit in outputs:
        if unit.peer or unit.rc != 0:
            continue
        mine = found.setdefault(unit.node, {})
        check = ck.NODE_CHECK.get(unit.test)
        if check is None or check.versions is None:
            continue
        try:
            mine.update(check.versions(check.parser()(unit.stdout)))
        except ParseError:
            continue
    return {k: v for k, v in sorted(found.items()) if v}


def per_node_status(verdicts: Iterable[j.Verdict], nodes: Sequence[str]
                    ) -> Mapping[str, list[j.Verdict]]:
    """Failures per node (every node present, failures in test order)."""
    out: dict[str, list[j.Verdict]] = {n: [] for n in nodes}
    for v in verdicts:
        if v.failed and v.node in out:
            out[v.node].append(v)
    return out
