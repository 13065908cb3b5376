"""``--dry-run --offline``: check everything that needs no reachable host.

Renders the inventory, lists the tasks of every selected phase playbook against it with one
``ansible-playbook --list-tasks`` run (a playbook that imports them all: Ansible loads the
inventory once; a failure is then pinned on its playbook by checking each alone), and lists
per phase the hosts it applies to (:mod:`provision.plan.stacks`), the hosts it skips and
why, and what would be done. Any problem is a finding; the CLI exits non-zero when there
is one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from provision.errors import ExecutionError
from provision.execute import ansible, phases, steps
from provision.execute.access import Targets
from provision.plan import stacks


@dataclass
class OfflineReport:
    phases: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    """(phase, hosts it applies to, tasks/actions)."""
    skipped: list[tuple[str, str, list[str]]] = field(default_factory=list)
    """(phase, why, hosts it skips)."""
    problems: list[str] = field(default_factory=list)


def offline_check(t: Targets, hosts: Sequence[str], phase_names: Sequence[str],
                  inventory: Path, playbooks: Path = ansible.PLAYBOOKS,
                  scope: Mapping[str, frozenset[stacks.Stack]] | None = None) -> OfflineReport:
    """``scope``: each node's stacks (:func:`provision.plan.stacks.node_stacks`); without
    it every phase applies to every host."""
    report = OfflineReport()
    by_name = t.by_name()
    settings = steps.settings_for(t.access, {})
    books = [p for p in phase_names if p in phases.PLAYBOOK_PHASES
             and p in phases.available(playbooks)]
    listed = _list_books(inventory, playbooks, books, report.problems)
    for phase in phase_names:
        todo = list(hosts)
        if scope is not None:
            todo, why = stacks.split(phase, hosts, scope)
            by_reason: dict[str, list[str]] = {}
            for host, reason in why.items():
                by_reason.setdefault(reason, []).append(host)
            report.skipped += [(phase, r, hs) for r, hs in by_reason.items()]
        if phase == "preflight":
            tasks = ["lint + plan freshness", "BMC reachable, credentials accepted, system "
                     "found (Redfish GET)", "SSH login with verified host key",
                     f"clock skew (warn > {steps.SKEW_WARN_S:g}s, fail > "
                     f"{steps.SKEW_FAIL_S:g}s)"]
        elif phase == "image":
            first = by_name[todo[0]] if todo else None
            tasks = steps.image_actions(first, settings) if first else []
            if t.access.image_note:
                tasks.append(t.access.image_note)
        elif phase == "platform":
            tasks = ["Pulumi Automation API: up the site's platform stack (needs the Pulumi "
                     "CLI; `gpuctl platform preview SITE` lists its resources without it)"]
        elif phase == "burnin":
            racks = list(dict.fromkeys(by_name[h].rack for h in todo))
            tasks = [f"gpuctl burnin run SITE --rack {r} --level standard" for r in racks]
        elif phase in books:
            tasks = listed.get(phase, [])
        else:
            tasks = ["not available yet (skipped)"]
        report.phases.append((phase, todo, tasks))
    return report


def _list_books(inventory: Path, playbooks: Path, books: Sequence[str],
                problems: list[str]) -> dict[str, list[str]]:
    """{phase: task names} of the phase playbooks ``books``, in one Ansible run when they
    all load; problems are appended, each naming its playbook."""
    if not books:
        return {}
    paths = {b: playbooks / phases.PLAYBOOK_PHASES[b] for b in books}
    with tempfile.TemporaryDirectory(prefix="gpuctl-offline-") as tmp:
        combined = Path(tmp) / "phases.yml"
        combined.write_text(yaml.safe_dump(
            [{"name": f"Phase {b}", "ansible.builtin.import_playbook": str(paths[b])}
             for b in books], sort_keys=False))
        try:
            plays = ansible.list_plays(inventory, combined)
        except ExecutionError:
            plays = None
    if plays is not None:
        split = _by_playbook(plays, {b: _play_names(paths[b]) for b in books})
        if split is not None:
            for b, tasks in split.items():
                if not tasks:
                    problems.append(f"{paths[b].name}: no tasks listed")
            return split
    out: dict[str, list[str]] = {}  # something failed: check each alone to name it
    for b in books:
        try:
            tasks = [task for p in ansible.list_plays(inventory, paths[b]) for task in p.tasks]
        except ExecutionError as exc:
            problems.append(str(exc))
            continue
        if not tasks:
            problems.append(f"{paths[b].name}: no tasks listed")
        out[b] = tasks
    return out


def _play_names(playbook: Path) -> list[str] | None:
    try:
        data = yaml.safe_load(playbook.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, list):
        return None
    return [str(p.get("name", "")) if isinstance(p, dict) else "" for p in data]


def _by_playbook(plays: Sequence[ansible.ListedPlay],
                 names: Mapping[str, list[str] | None]) -> dict[str, list[str]] | None:
    """Cut the combined run's plays back into phases by each playbook's play names, in
    order; None when they do not line up (then each playbook is listed alone)."""
    out: dict[str, list[str]] = {}
    i = 0
    for book, expect in names.items():
        if expect is None or [p.name for p in plays[i:i + len(expect)]] != expect:
            return None
        out[book] = [task for p in plays[i:i + len(expect)] for task in p.tasks]
        i += len(expect)
    return out if i == len(plays) else None
