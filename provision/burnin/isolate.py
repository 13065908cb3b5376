"""Isolate the bad node(s) of a failed collective by adaptive group testing (bisection).

A collective over a group fails when any member is bad. Starting from a failed group, each
*round* splits every group known to hold a bad node into two halves and tests all halves of
all groups at once (they are disjoint, so they run in parallel). A passing half joins the
*known-good* set; a failing half is split again; a half of one node is tested together with a
known-good node (a collective needs ``min_size`` members). With ``d`` bad nodes among ``n``
that takes about ``log2(n)`` rounds and at most ``2 d log2(n)`` tests; a final round confirms
each isolated node against a known-good partner it has not failed with before.

The tester is passed in (``run_round(groups) -> passed?`` per group), so the same code runs
against real ``mpirun`` launches and against the simulated oracle in
``bench/isolation_sim.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Group = tuple[str, ...]
RoundTester = Callable[[Sequence[Group]], Sequence[bool]]


@dataclass(frozen=True)
class Isolation:
    """The outcome: ``bad`` nodes (``confirmed`` the subset re-failed with a known-good
    partner), ``suspects`` that could not be separated (no known-good node to pair a lone
    node with), ``good`` nodes that passed a test, and the cost in rounds and tests."""

    bad: tuple[str, ...]
    confirmed: tuple[str, ...]
    suspects: tuple[str, ...]
    good: tuple[str, ...]
    rounds: int
    tests: int
    log: tuple[tuple[Group, bool], ...]
    notes: tuple[str, ...] = ()


@dataclass
class _State:
    good: list[str]
    suspect: list[Group] = field(default_factory=list)
    unknown: list[Group] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    log: list[tuple[Group, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rounds: int = 0

    def add_good(self, nodes: Sequence[str]) -> None:
        for node in nodes:
            if node not in self.good:
                self.good.append(node)


def _pad(group: Group, min_size: int, pads: list[str]) -> Group | None:
    """``group`` filled up to ``min_size`` with unused known-good nodes (consumed)."""
    need = max(0, min_size - len(group))
    if need > len(pads):
        return None
    extra, pads[:] = pads[:need], pads[need:]
    return group + tuple(extra)


def _run(state: _State, tester: RoundTester, planned: list[Group]) -> list[bool]:
    state.rounds += 1
    results = list(tester(planned))
    if len(results) != len(planned):
        raise ValueError(f"tester answered {len(results)} results for {len(planned)} groups")
    state.log.extend(zip(planned, results, strict=True))
    return results


def _round(state: _State, tester: RoundTester, min_size: int) -> bool:
    """One round of splitting and testing; False when nothing could be tested."""
    pads = list(state.good)
    jobs: list[tuple[Group, Group, Group]] = []  # (half, sibling left untested, tested group)
    keep_suspect: list[Group] = []
    splits: list[tuple[Group, Group, Group]] = []
    for group in state.suspect:
        if len(group) == 1:
            state.bad.append(group[0])
            continue
        mid = (len(group) + 1) // 2
        first, second = group[:mid], group[mid:]
        if len(first) < len(second):
            first, second = second, first
        planned = _pad(first, min_size, pads)  # one half of every group first: fair pads
        if planned is None:
            keep_suspect.append(group)
        else:
            splits.append((first, second, planned))
    for first, second, planned in splits:
        other = _pad(second, min_size, pads)
        if other is None:
            jobs.append((first, second, planned))
        else:
            jobs += [(first, (), planned), (second, (), other)]
    waiting: list[Group] = []
    for group in state.unknown:
        tested = _pad(group, min_size, pads)
        if tested is None:
            waiting.append(group)
        else:
            jobs.append((group, (), tested))
    state.suspect, state.unknown = keep_suspect, waiting
    if not jobs:
        return False
    results = _run(state, tester, [job[2] for job in jobs])
    for (half, untested_sibling, tested), ok in zip(jobs, results, strict=True):
        if ok:
            state.add_good(tested)
            if untested_sibling:
                state.suspect.append(untested_sibling)  # the parent failed: the bad is there
        else:
            state.suspect.append(half)
            if untested_sibling:
                state.unknown.append(untested_sibling)
    return True


def isolate(members: Sequence[str], tester: RoundTester, *, known_good: Sequence[str] = (),
            min_size: int = 2, confirm: bool = True, max_rounds: int = 64) -> Isolation:
    """Find the bad nodes of ``members``, whose collective has just failed.

    ``known_good`` nodes (outside ``members``) may be borrowed as partners for lone nodes.
    A flaky failure (both halves pass) marks the group good and says so in ``notes``.
    """
    state = _State(good=list(known_good), suspect=[tuple(members)] if members else [])
    while (state.suspect or state.unknown) and state.rounds < max_rounds:
        before = (list(state.suspect), list(state.unknown), len(state.bad))
        progressed = _round(state, tester, min_size)
        if not progressed and before == (state.suspect, state.unknown, len(state.bad)):
            break
    suspects = sorted({n for g in state.suspect + state.unknown for n in g} - set(state.bad))
    if suspects:
        state.notes.append(f"could not separate {', '.join(suspects)}: no known-good node "
                           "to test a lone node against")
    tested_bad = {n for g, ok in state.log if not ok for n in g}
    if members and not state.bad and not suspects and tested_bad <= set(state.good):
        state.notes.append("the failure did not reproduce in any subgroup (flaky?)")
    confirmed = _confirm(state, tester, min_size) if confirm and state.bad else []
    member_set = set(members)
    return Isolation(
        bad=tuple(sorted(state.bad)), confirmed=tuple(sorted(confirmed)),
        suspects=tuple(suspects),
        good=tuple(sorted(n for n in state.good if n in member_set)),
        rounds=state.rounds, tests=len(state.log), log=tuple(state.log),
        notes=tuple(state.notes))


def _confirm(state: _State, tester: RoundTester, min_size: int) -> list[str]:
    """Re-test each isolated node with known-good partners (one more round, or a few when
    there are more bad nodes than good partners)."""
    confirmed: list[str] = []
    todo = list(state.bad)
    while todo:
        pads = list(state.good)
        planned: list[Group] = []
        owners: list[str] = []
        for node in list(todo):
            tested = _pad((node,), min_size, pads)
            if tested is None:
                break
            planned.append(tested)
            owners.append(node)
            todo.remove(node)
        if not planned:
            state.notes.append(f"not confirmed (no known-good partner): {', '.join(todo)}")
            break
        for node, ok in zip(owners, _run(state, tester, planned), strict=True):
            if not ok:
                confirmed.append(node)
            else:
                state.notes.append(f"{node} passed with a known-good partner on re-test")
    return confirmed
