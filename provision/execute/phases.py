"""The bring-up phases of ``gpuctl provision site`` and the loop that runs them.

preflight (BMC + SSH + clock checks; always re-run, also on --resume) -> image (Redfish PXE
once + power cycle, wait for SSH) -> base (Ansible roles). Later phases run their
playbook (``playbooks/<phase>.yml``) when this checkout has one (nvidia, fabric, kubernetes);
platform runs the site's Pulumi stack and burnin runs the rack burn-in passed in
(:data:`BurninRack`, in this process) rack by rack.
Every host result goes to the store as it is known, so an interrupted run leaves a
consistent record and ``--resume`` skips what already succeeded for the same plan version.
A host that fails a phase drops out of the later phases; the others go on. A phase skips the
hosts it does not apply to (:mod:`provision.plan.stacks`: no NVIDIA stack or burn-in without
GPUs, no InfiniBand stack without HCAs, no Kubernetes on storage nodes) and says why.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from provision.errors import ExecutionError, GpuctlError, UsageError
from provision.execute import ansible, steps
from provision.execute.access import Targets
from provision.execute.display import Reporter
from provision.execute.events import HostTally, stats_status, tally_stats
from provision.execute.rundir import RunDir
from provision.execute.store import Store
from provision.plan import stacks

PHASES = ("preflight", "image", "base", "nvidia", "fabric", "kubernetes", "platform", "burnin")
PYTHON_PHASES = ("preflight", "image")
SITE_PHASES = ("platform", "burnin")
"""Phases that act on the site as a whole (Pulumi stack, rack burn-in), not host by host."""
PLAYBOOK_PHASES = {p: f"{p}.yml" for p in ("base", "nvidia", "fabric", "kubernetes")}
BAD = ("failed", "unreachable")
CANCEL_GRACE_S = 2.0
"""How long a cancelled Python phase waits for hosts still inside a BMC or SSH call; the
run then ends without them (their results stay unknown, so --resume redoes them)."""
STRAY_PREFIX = "gpuctl-phase-"
"""Name prefix of the threads a cancelled phase may leave behind (see :func:`strays`)."""


def available(playbooks: Path = ansible.PLAYBOOKS) -> tuple[str, ...]:
    """Phases this checkout can run: the Python ones and those whose playbook exists."""
    return tuple(p for p in PHASES if p in PYTHON_PHASES or p in SITE_PHASES
                 or (p in PLAYBOOK_PHASES and (playbooks / PLAYBOOK_PHASES[p]).exists()))
KIND = "provision"
DRY_KIND = "provision-dry-run"

BurninRack: TypeAlias = Callable[[str, Sequence[str], str, threading.Event],
                                 Mapping[str, steps.Outcome]]
"""``(rack, hosts, level, cancel) -> {host: outcome}``: one rack's burn-in, run in this
process; once ``cancel`` is set its commands stop and it raises a GpuctlError."""


class Interrupted(GpuctlError):
    """The run was stopped (SIGINT/SIGTERM); the store says ``interrupted``."""

    exit_code = 130


def parse_phases(text: str) -> list[str]:
    """``preflight,image,base`` or ``all`` -> phase names in run order."""
    if text.strip() == "all":
        return list(PHASES)
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in wanted if p not in PHASES]
    if bad or not wanted:
        raise UsageError(f"--phases {text!r}: unknown phase {bad[0] if bad else ''!r}; "
                             f"phases are {', '.join(PHASES)} (or all)")
    return [p for p in PHASES if p in wanted]


@dataclass
class RunOptions:
    phases: Sequence[str]
    hosts: Sequence[str]  # after --limit, in plan order
    plan_version: str
    inventory: Path
    dry_run: bool = False
    resume: bool = False
    max_fail_percent: float = 100.0
    tuning: ansible.Tuning = ansible.Tuning()
    settings: steps.StepSettings = field(default_factory=lambda: steps.StepSettings(env={}))
    playbooks: Path = ansible.PLAYBOOKS
    extravars: Mapping[str, Any] = field(default_factory=dict)
    plan: Any = None  # the Plan: what each phase applies to, and the site-wide phases
    site_path: Path | None = None
    burnin_level: str = "standard"
    burnin: BurninRack | None = None  # the burnin phase's rack runner (the CLI passes it)
    workdir: RunDir | None = None  # the run directory: temp files, guarded children


@dataclass
class RunReport:
    run_id: int
    status: str  # ok, failed, interrupted
    results: dict[tuple[str, str], steps.Outcome] = field(default_factory=dict)
    phase_status: dict[str, str] = field(default_factory=dict)

    def failed_hosts(self) -> list[str]:
        return sorted({h for (_, h), o in self.results.items()
                       if o.status in ("failed", "unreachable")})


@dataclass
class Runner:
    """Runs phases for one site; transports and execution strategy are passed in."""

    targets: Targets
    store: Store
    reporter: Reporter
    executor: steps.Strategy  # how per-host steps run: serially or on threads
    client: steps.ClientFactory
    cancel: threading.Event = field(default_factory=threading.Event)
    run_playbook: Callable[..., ansible.PlaybookResult] = ansible.run_playbook

    def run(self, opts: RunOptions) -> RunReport:
        kind = DRY_KIND if opts.dry_run else KIND
        site = self.targets.site
        done = (self.store.succeeded(KIND, site, opts.plan_version, phases=PHASES)
                if opts.resume else set())
        run_id = self.store.record_run(kind=kind, site=site, plan_version=opts.plan_version,
                                       options={"phases": list(opts.phases),
                                                "hosts": list(opts.hosts),
                                                "dry_run": opts.dry_run,
                                                "resume": opts.resume})
        report = RunReport(run_id, "running")
        active = list(opts.hosts)
        scope = stacks.node_stacks(opts.plan) if opts.plan is not None else None
        try:
            for phase in opts.phases:
                self._check_cancel()
                status = self._phase(phase, active, done, opts, report, scope)
                report.phase_status[phase] = status
                failed = {h for (p, h), o in report.results.items()
                          if p == phase and o.status in ("failed", "unreachable")}
                active = [h for h in active if h not in failed]
                if opts.hosts and 100.0 * len(failed) / len(opts.hosts) > opts.max_fail_percent:
                    self.reporter.note(f"stopping: {len(failed)} of {len(opts.hosts)} hosts "
                                       f"failed {phase} (over --max-fail-percent "
                                       f"{opts.max_fail_percent:g})")
                    break
            self._check_cancel()
        except (Interrupted, KeyboardInterrupt) as exc:
            report.status = "interrupted"
            self.store.finish_run(run_id, "interrupted", "stopped by signal")
            raise Interrupted(f"run {run_id} interrupted; rerun with --resume to continue") \
                from exc
        except GpuctlError as exc:
            report.status = "failed"
            self.store.finish_run(run_id, "failed", str(exc))
            raise
        report.status = "failed" if report.failed_hosts() else "ok"
        self.store.finish_run(run_id, report.status,
                              f"{len(report.failed_hosts())} host(s) failed")
        return report

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("cancelled")

    def _record(self, report: RunReport, phase: str, host: str, o: steps.Outcome) -> None:
        report.results[(phase, host)] = o
        self.store.record_result(report.run_id, phase, host, o.status, stats=o.stats,
                                 detail=o.detail)
        self.reporter.host_done(phase, host, o.status, o.detail)

    def _phase(self, phase: str, active: Sequence[str], done: set[tuple[str, str]],
               opts: RunOptions, report: RunReport,
               scope: Mapping[str, frozenset[stacks.Stack]] | None = None) -> str:
        if phase not in available(opts.playbooks):
            self.reporter.note(f"phase {phase}: not available yet in this gpuctl version — "
                               "skipped (nothing was done)")
            self.store.record_phase(report.run_id, phase, "skipped", "not available yet")
            return "skipped"
        if scope is not None:
            active, why = stacks.split(phase, active, scope)
            self._not_applicable(report, phase, why)
            if not active:
                self.store.record_phase(report.run_id, phase, "skipped",
                                        "applies to none of the selected hosts")
                return "skipped"
        todo = [h for h in active if phase == "preflight" or (phase, h) not in done]
        skipped = [h for h in active if h not in todo]
        if skipped:
            self.reporter.note(f"phase {phase}: --resume skips {len(skipped)} host(s) done "
                               f"for plan {opts.plan_version}: {', '.join(skipped)}")
        if not todo:
            self.store.record_phase(report.run_id, phase, "skipped", "all hosts done")
            return "skipped"
        self.store.record_phase(report.run_id, phase, "running")
        self.reporter.phase_start(phase, todo)
        try:
            if phase in PLAYBOOK_PHASES:
                self._ansible_phase(phase, todo, opts, report)
            elif phase in SITE_PHASES:
                self._site_phase(phase, todo, opts, report)
            else:
                self._python_phase(phase, todo, opts, report)
        finally:
            bad = [h for h in todo if report.results.get((phase, h), steps.Outcome("failed"))
                   .status in ("failed", "unreachable")]
            status = ("interrupted" if self.cancel.is_set() else "failed" if bad else "ok")
            self.reporter.phase_done(phase, status)
            if status != "interrupted":
                self.store.record_phase(report.run_id, phase, status,
                                        f"{len(bad)} of {len(todo)} host(s) failed")
        return status

    def _not_applicable(self, report: RunReport, phase: str, why: Mapping[str, str]) -> None:
        """Record the hosts ``phase`` does not apply to as skipped, one note per reason."""
        by_reason: dict[str, list[str]] = {}
        for host, reason in why.items():
            by_reason.setdefault(reason, []).append(host)
            outcome = steps.Outcome("skipped", f"{phase} does not apply: {reason}")
            report.results[(phase, host)] = outcome
            self.store.record_result(report.run_id, phase, host, outcome.status,
                                     detail=outcome.detail)
        for reason, hosts in by_reason.items():
            self.reporter.note(f"phase {phase}: skips {len(hosts)} host(s), {reason}: "
                               + _names(hosts))

    def _python_phase(self, phase: str, todo: Sequence[str], opts: RunOptions,
                      report: RunReport) -> None:
        hosts = self.targets.by_name()
        s = opts.settings
        if opts.dry_run and phase == "image":
            for name in todo:
                actions = steps.image_actions(hosts[name], s)
                self._record(report, phase, name,
                             steps.Outcome("skipped", "dry run, would: " + " | ".join(actions)))
            return

        if phase == "image" and s.imaging is not None:
            prepared = s.imaging.prepare(playbooks=opts.playbooks, workdir=opts.workdir,
                                         run_playbook=self.run_playbook,
                                         cancelled=self.cancel.is_set)
            if prepared is not None:
                self.reporter.note(f"phase image: {prepared.detail}")
                if prepared.status in BAD:
                    for name in todo:
                        self._record(report, phase, name, steps.Outcome(
                            "failed", f"not imaged: {prepared.detail}"))
                    return

        # Each host's result is stored the moment it is known (the store is used from this
        # thread only): workers post to a queue, this thread records. Before the image phase
        # changes a host (PXE + power cycle) it is recorded ``running``: killed then, its
        # image (and every later phase) is not done for --resume.
        posted: queue.Queue[tuple[str, steps.Outcome | None]] = queue.Queue()

        def one(name: str) -> tuple[str, steps.Outcome]:
            if self.cancel.is_set():
                outcome = steps.Outcome("skipped", "cancelled")
            elif phase == "preflight":
                outcome = steps.preflight_host(hosts[name], s, self.client)
            else:
                outcome = steps.image_host(hosts[name], s, self.client,
                                           cancelled=self.cancel.is_set,
                                           started=lambda: posted.put((name, None)))
            posted.put((name, outcome))
            return name, outcome

        failure: list[BaseException] = []

        def work() -> None:
            try:
                self.executor.map(one, list(todo))
            except BaseException as exc:  # re-raised in this thread below
                failure.append(exc)

        worker = threading.Thread(target=work, name=f"{STRAY_PREFIX}{phase}", daemon=True)
        worker.start()
        cancelled_at: float | None = None
        while worker.is_alive() or not posted.empty():
            if self.cancel.is_set():
                cancelled_at = cancelled_at or time.monotonic()
                if time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                    break  # a BMC call still blocks: its host stays 'running' (not done)
            try:
                name, got = posted.get(timeout=0.2)
            except queue.Empty:
                continue
            if got is None:
                self.store.record_result(report.run_id, phase, name, "running",
                                         detail="PXE boot + power cycle under way")
            elif not (got.status == "skipped" and self.cancel.is_set()):
                self._record(report, phase, name, got)
        if failure:
            raise failure[0]

    def _site_phase(self, phase: str, todo: Sequence[str], opts: RunOptions,
                    report: RunReport) -> None:
        """platform: the site's Pulumi stack; burnin: the rack burn-in passed in, per rack."""
        if opts.plan is None or opts.site_path is None:
            raise ExecutionError(f"phase {phase}: needs the site plan (internal error)")
        if phase == "platform":
            from provision.execute.pulumi_stack import provision_platform

            res = provision_platform(opts.plan, dry_run=opts.dry_run)
            if opts.dry_run:
                outcome = steps.Outcome("skipped", f"dry run: the stack would manage "
                                                   f"{len(res.resources)} resources")
            else:
                outcome = steps.Outcome("ok", f"{res.operation}: " + ", ".join(
                    f"{k} {v}" for k, v in sorted(res.changes.items())))
            for host in todo:
                self._record(report, phase, host, outcome)
            return
        rack_of = {n.name: n.rack for n in opts.plan.nodes}
        racks = list(dict.fromkeys(rack_of[h] for h in todo if h in rack_of))
        for rack in racks:
            self._check_cancel()
            hosts = [h for h in todo if rack_of.get(h) == rack]
            if opts.dry_run:
                for host in hosts:
                    self._record(report, phase, host, steps.Outcome(
                        "skipped", f"dry run, would run: burnin run {opts.site_path} --rack "
                                   f"{rack} --level {opts.burnin_level}"))
                continue
            if opts.burnin is None:
                raise ExecutionError("phase burnin: no burn-in runner passed in (internal "
                                     "error)")
            try:
                outcomes = opts.burnin(rack, hosts, opts.burnin_level, self.cancel)
            except GpuctlError as exc:
                if self.cancel.is_set():
                    raise Interrupted(f"phase burnin cancelled in rack {rack}") from exc
                outcomes = {h: steps.Outcome("failed", f"burn-in failed: {exc}")
                            for h in hosts}
            self._check_cancel()
            for host in hosts:
                self._record(report, phase, host, outcomes.get(host, steps.Outcome(
                    "failed", "not in the burn-in report")))

    def _ansible_phase(self, phase: str, todo: Sequence[str], opts: RunOptions,
                       report: RunReport) -> None:
        req = ansible.PlaybookRequest(
            playbook=opts.playbooks / PLAYBOOK_PHASES[phase], inventory=opts.inventory,
            limit=list(todo), check=opts.dry_run, tuning=opts.tuning,
            extravars=opts.extravars, workdir=opts.workdir)

        # Each host's result is stored from the event stream the moment it is known, not
        # at the end of the playbook: a host that failed or went unreachable is out of the
        # play, a host that ran the done task has finished the phase (the final stats
        # overwrite both; they also correct a failure a rescue block recovered from).
        early: set[str] = set()

        def update(tallies: Mapping[str, HostTally]) -> None:
            for host, tally in tallies.items():
                self.reporter.host_update(phase, host, tally)
                if host in early or host not in todo:
                    continue
                if tally.status in BAD:
                    early.add(host)
                    self.store.record_result(report.run_id, phase, host, tally.status,
                                             detail=tally.message or tally.status)
                elif tally.finished:
                    early.add(host)
                    self.store.record_result(
                        report.run_id, phase, host, tally.status, stats=tally_stats(tally),
                        detail=f"{tally.changed} changed"
                        + (" (check mode: would change)" if opts.dry_run else ""))

        result = self.run_playbook(req, on_update=update, cancelled=self.cancel.is_set)
        if result.status == "canceled" or self.cancel.is_set():
            self.cancel.set()
            raise Interrupted(f"phase {phase} cancelled")
        for host in todo:
            stats = result.stats.get(host)
            tally = result.tallies.get(host, HostTally())
            if stats is None:
                outcome = steps.Outcome("failed", f"no result from Ansible (status "
                                                  f"{result.status}, rc {result.rc})")
            else:
                status = stats_status(stats)
                detail = tally.message or (f"{stats['changed']} changed"
                                           + (" (check mode: would change)"
                                              if opts.dry_run else ""))
                outcome = steps.Outcome(status, detail, stats)
            self._record(report, phase, host, outcome)


def strays() -> list[str]:
    """Threads of phases still blocked in a BMC or SSH call after a cancel."""
    return [t.name for t in threading.enumerate() if t.name.startswith(STRAY_PREFIX)
            or t.name.startswith("ThreadPoolExecutor")]


def _names(hosts: Sequence[str], most: int = 6) -> str:
    return ", ".join(hosts) if len(hosts) <= most else \
        f"{', '.join(hosts[:most - 1])} ... ({len(hosts)})"
