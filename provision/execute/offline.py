"""``--dry-run --offline``: check everything that needs no reachable host.

Renders the inventory, runs ``ansible-playbook --syntax-check`` and ``--list-tasks`` on every
phase playbook against it, and lists per phase the hosts and what would be done to them.
Any problem is a finding; the CLI exits non-zero when there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import ExecutionError
from provision.execute import ansible, phases, steps
from provision.execute.inventory import Targets


@dataclass
class OfflineReport:
    phases: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # (phase, hosts, tasks/actions)


def offline_check(t: Targets, hosts: Sequence[str], phase_names: Sequence[str],
                  inventory: Path, playbooks: Path = ansible.PLAYBOOKS) -> OfflineReport:
    report = OfflineReport()
    by_name = t.by_name()
    settings = steps.StepSettings(env={}, lab=t.lab, boot_timeout=30.0 if t.lab else 600.0)
    for extra in ("site.yml",):
        err = _syntax(inventory, playbooks / extra)
        if err:
            report.problems.append(f"{extra}: {err}")
    for phase in phase_names:
        if phase == "preflight":
            tasks = ["lint + plan freshness", "BMC reachable, credentials accepted, system "
                     "found (Redfish GET)", "SSH login with verified host key",
                     f"clock skew (warn > {steps.SKEW_WARN_S:g}s, fail > "
                     f"{steps.SKEW_FAIL_S:g}s)"]
        elif phase == "image":
            first = by_name[hosts[0]] if hosts else None
            tasks = steps.image_actions(first, settings) if first else []
            if t.lab:
                tasks.append("lab: nothing is reinstalled; the host stays reachable")
        elif phase == "platform":
            tasks = ["Pulumi Automation API: up the site's platform stack (needs the Pulumi "
                     "CLI; `gpuctl platform preview SITE` lists its resources without it)"]
        elif phase == "burnin":
            racks = list(dict.fromkeys(by_name[h].rack for h in hosts
                                       if getattr(by_name[h], "rack", None)))
            tasks = [f"gpuctl burnin run SITE --rack {r} --level standard" for r in racks] \
                or ["gpuctl burnin run SITE --rack R for each rack"]
        elif phase in phases.available(playbooks):
            playbook = playbooks / phases.PLAYBOOK_PHASES[phase]
            err = _syntax(inventory, playbook)
            if err:
                report.problems.append(f"{playbook.name}: {err}")
                tasks = []
            else:
                try:
                    listed = ansible.list_tasks(inventory, playbook)
                except ExecutionError as exc:
                    report.problems.append(str(exc))
                    listed = {}
                tasks = [task for names in listed.values() for task in names]
                if not tasks:
                    report.problems.append(f"{playbook.name}: no tasks listed")
        else:
            tasks = ["not available yet (skipped)"]
        report.phases.append((phase, list(hosts), tasks))
    return report


def _syntax(inventory: Path, playbook: Path) -> str | None:
    if not playbook.exists():
        return f"missing playbook {playbook}"
    return ansible.syntax_check(inventory, playbook)
