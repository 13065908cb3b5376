"""Ansible events -> per-host results: pure functions, no I/O (STYLE lesson 8).

Contract: ansible-runner calls its ``event_handler`` with each event dict (``event``,
``event_data`` with ``host``, ``task``, ``res``, ...). :func:`task_event` turns one into a
:class:`TaskEvent` (or ``None`` for events that say nothing about a host's task);
:func:`apply` folds it into the running per-host tally; :func:`stats_event` reads the final
``playbook_on_stats`` counters, which are authoritative for the stored result.

A host has finished a phase when it ran :data:`DONE_TASK`, the one task of the play gpuctl
appends to every phase playbook: from that event on its tally is ``finished`` and its
result can be stored, long before the playbook's final stats (other hosts may still run).
A host that failed or went unreachable is out of the play; its tally says so at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OUTCOMES = ("ok", "changed", "failed", "unreachable", "skipped")
_KINDS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}
DONE_TASK = "gpuctl: host finished the phase"
_STATS_KEYS = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
               "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}


@dataclass(frozen=True)
class TaskEvent:
    host: str
    task: str
    outcome: str  # one of OUTCOMES
    message: str = ""


@dataclass(frozen=True)
class HostTally:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    last_task: str = ""
    message: str = ""  # the first failure's message
    finished: bool = False  # ran DONE_TASK: every task of the phase is behind it

    @property
    def status(self) -> str:
        return tally_status(self.failed, self.unreachable, self.changed)


def tally_status(failed: int, unreachable: int, changed: int) -> str:
    if unreachable:
        return "unreachable"
    if failed:
        return "failed"
    return "changed" if changed else "ok"


def _message(res: Mapping[str, Any]) -> str:
    for key in ("msg", "stderr", "module_stderr", "reason"):
        value = res.get(key)
        if value:
            text = " ".join(str(value).split())
            return text if len(text) <= 300 else text[:297] + "..."
    return ""


def task_event(event: Mapping[str, Any]) -> TaskEvent | None:
    """One ansible-runner event -> a host's task outcome, or None."""
    kind = _KINDS.get(str(event.get("event", "")))
    data = event.get("event_data") or {}
    host = data.get("host")
    if kind is None or not host:
        return None
    res = data.get("res") or {}
    if kind == "failed" and data.get("ignore_errors"):
        kind = "ok"
    if kind == "ok" and res.get("changed"):
        kind = "changed"
    message = _message(res) if kind in ("failed", "unreachable") else ""
    if res.get("_ansible_no_log") and kind in ("failed", "unreachable"):
        message = "(details hidden: no_log task)"
    return TaskEvent(str(host), str(data.get("task", "")), kind, message)


def apply(tallies: Mapping[str, HostTally], ev: TaskEvent) -> dict[str, HostTally]:
    """A new tally dict with ``ev`` counted (the input is not changed)."""
    old = tallies.get(ev.host, HostTally())
    counts = {ev.outcome: getattr(old, ev.outcome) + 1}
    if ev.outcome == "changed":
        counts["ok"] = old.ok + 1  # Ansible counts a changed task as ok, too
    message = old.message or (ev.message if ev.outcome in ("failed", "unreachable") else "")
    finished = old.finished or (ev.task == DONE_TASK and ev.outcome == "ok")
    new = dataclasses.replace(old, last_task=ev.task, message=message, finished=finished,
                              **counts)
    return {**tallies, ev.host: new}


def tally_stats(tally: HostTally) -> dict[str, int]:
    """The tally's counters in the shape of :func:`stats_event`'s (what is stored)."""
    return {name: getattr(tally, name) for name in OUTCOMES}


def stats_event(event: Mapping[str, Any]) -> dict[str, dict[str, int]] | None:
    """``{host: {ok, changed, failed, unreachable, skipped, rescued, ignored}}`` from a
    ``playbook_on_stats`` event, else None."""
    if event.get("event") != "playbook_on_stats":
        return None
    data = event.get("event_data") or {}
    hosts: set[str] = set()
    for key in _STATS_KEYS:
        hosts |= set((data.get(key) or {}).keys())
    return {h: {name: int((data.get(key) or {}).get(h, 0)) for key, name in _STATS_KEYS.items()}
            for h in sorted(hosts)}


def stats_status(stats: Mapping[str, int]) -> str:
    return tally_status(stats.get("failed", 0), stats.get("unreachable", 0),
                        stats.get("changed", 0))
