"""What ``--resume`` may skip: the latest truth per host, from every recorded attempt.

A host's state is what its most recent attempt of each phase did, in any run of any plan
version: a later failure, an interrupted attempt or one still ``running`` when its run died
undoes an earlier success, and re-imaging (:data:`INVALIDATES`) undoes the successes of every
later phase on that host, whatever their plan. Only a success under the plan version being
resumed is skipped. ``skipped`` attempts did nothing (dry runs, cancelled hosts, hosts a
resume skipped) and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

OK_STATES = ("ok", "changed")
NOTHING_DONE = ("skipped",)


@dataclass(frozen=True)
class Attempt:
    """One host result as stored, in record order (``run_id``, then ``seq``)."""

    run_id: int
    seq: float
    phase: str
    host: str
    status: str
    plan_version: str


def invalidated_by(phases: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``image`` reinstalls the OS: every phase after it must run again on that host."""
    if "image" not in phases:
        return {}
    return {"image": tuple(phases[phases.index("image") + 1:])}


def done(attempts: Iterable[Attempt], plan_version: str,
         phases: Sequence[str]) -> set[tuple[str, str]]:
    """``{(phase, host)}`` whose latest truth is a success under ``plan_version``."""
    invalidates = invalidated_by(phases)
    state: dict[str, dict[str, str]] = {}
    for a in sorted(attempts, key=lambda a: (a.run_id, a.seq)):
        if a.status in NOTHING_DONE:
            continue
        host = state.setdefault(a.host, {})
        for later in invalidates.get(a.phase, ()):
            host.pop(later, None)
        if a.status in OK_STATES:
            host[a.phase] = a.plan_version
        else:
            host.pop(a.phase, None)
    return {(phase, h) for h, got in state.items() for phase, v in got.items()
            if v == plan_version}
