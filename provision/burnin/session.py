"""From ``gpuctl burnin run SITE --rack R`` to a stored, judged, reported run.

Loads the plan, runs the rack-scoped fabric verify (live; skipped with a note when the
fabric cannot be reached), opens the site's results DB, resumes an interrupted run when
asked, moves the nodes through their lifecycle, runs the level and writes the reports.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from provision.burnin.flow import execute
from provision.burnin.html import render_html
from provision.burnin.report import RunReport, junit_xml
from provision.burnin.runner import RunConfig, Runner
from provision.burnin.store import BurninStore, open_burnin_store
from provision.burnin.store import store_url as burnin_store_url
from provision.burnin.targets import NodeTarget, other_rack_node, rack_targets
from provision.burnin.thresholds import thresholds_for
from provision.errors import ExecutionError, GpuctlError, UsageError
from provision.execute.access import Access
from provision.execute.remote import RemoteExecutor, SshExecutor
from provision.execute.ssh import SshTarget
from provision.execute.steps import Outcome
from provision.loader import LoadedSite
from provision.plan.build import Plan
from provision.render.plan_files import plan_version
from provision.storefile import seeded_known_hosts


@dataclass(frozen=True)
class BurninOptions:
    rack: str
    level: str = "standard"
    resume: bool = False
    report_dir: Path | None = None
    store: str | None = None
    access: Access = field(default_factory=Access)  # how nodes are reached (--access)
    workers: int = 16
    timeout_s: float = 900.0
    soak_s: float = 3600.0
    skip_fabric: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set (SIGTERM): every running command stops at once, nothing more starts."""


def fabric_check(plan: Plan, rack: str, targets: list[NodeTarget],
                 access: Access) -> tuple[str, str, dict[str, object] | None]:
    """(pass|fail|skip, detail, verify JSON) of ``fabric verify --live --scope rack=R`` on
    the InfiniBand fabric of the rack's first node with HCAs (``ibnetdiscover`` here, in the
    access file's InfiniBand environment for that node's first HCA)."""
    from provision.execute.ibdiscover import run_ibnetdiscover
    from provision.fabric.expected import expected_fabric, parse_scope
    from provision.fabric.topology import parse_topology
    from provision.fabric.verify import verify

    try:
        fabric = next((f for t in targets if t.hcas
                       for f in [plan.ib_fabric_of(t.name)] if f is not None), "compute")
        exp = expected_fabric(plan, fabric)
        scope = parse_scope([f"rack={rack}"], exp)
        first = next((t for t in targets if t.hcas), None)
        env = access.infiniband_env(first.name, first.hcas[0]) if first is not None else {}
        text = run_ibnetdiscover(timeout=60.0, extra_env=env)
        result = verify(parse_topology(text), exp, scope)
    except (GpuctlError, StopIteration, OSError) as exc:
        return "skip", f"fabric not reachable, verify skipped: {exc}", None
    counts = ", ".join(f"{k} {v}" for k, v in result.counts().items())
    detail = (f"rack {rack}: {result.matched}/{result.planned_in_scope} planned links matched"
              + (f"; findings: {counts}" if counts else ""))
    return ("pass" if result.ok else "fail"), detail, result.to_json()


def ssh_targets(targets: Sequence[NodeTarget], access: Access,
                seeded: Path | None) -> dict[str, SshTarget]:
    """How to SSH to each node: the access file's settings, host keys checked against
    ``seeded`` (what ``gpuctl image seed`` wrote) where the access file names none, as
    provision does."""
    out = {}
    for t in targets:
        ssh = access.ssh_target(t.name, t.address)
        if ssh.known_hosts is None and seeded is not None:
            ssh = replace(ssh, known_hosts=seeded)
        out[t.name] = ssh
    return out


def _executor(targets: list[NodeTarget], access: Access, cancel: threading.Event,
              seeded: Path | None = None) -> RemoteExecutor:
    return SshExecutor(ssh_targets(targets, access, seeded),
                       connect_timeout=access.timeouts.ssh_s or 10.0, cancel=cancel)


def _start(store: BurninStore, site: str, version: str, opts: BurninOptions,
           say: Callable[[str], None]) -> int:
    previous = store.resumable(site, version, opts.rack, opts.level) if opts.resume else None
    run_id = store.start_run(site, version, {"rack": opts.rack, "level": opts.level,
                                             "resumed_from": previous})
    if previous is not None:
        copied = store.copy_outputs(previous, run_id)
        say(f"resuming run {previous}: {copied} finished probes kept")
    elif opts.resume:
        say("--resume: no interrupted run of this rack and level; starting afresh")
    return run_id


def run_burnin(loaded: LoadedSite, plan: Plan, opts: BurninOptions,
               say: Callable[[str], None] = lambda _m: None,
               executor: RemoteExecutor | None = None) -> RunReport:
    """Run one rack's burn-in and record it. When ``opts.cancel`` is set the SSH executor
    ends every command, the run is recorded interrupted (no verdicts, no node states) and
    an ExecutionError says so."""
    site = plan.site.site.name
    th = thresholds_for(plan.site.burnin.profile, plan.site.burnin.overrides)
    targets = rack_targets(plan, opts.rack)
    if opts.access.source is not None:
        say(f"access: {opts.access.source}"
            + (f" ({opts.access.description})" if opts.access.description else ""))
    fabric: tuple[str, str, dict[str, object] | None]
    if opts.skip_fabric:
        fabric = ("skip", "skipped (--skip-fabric)", None)
    else:
        fabric = fabric_check(plan, opts.rack, targets, opts.access)
    say(f"fabric verify: {fabric[0]}: {fabric[1]}")
    version = plan_version(plan)
    store_url = burnin_store_url(opts.store, loaded.path.parent)
    partner_name = other_rack_node(plan, opts.rack) if opts.level == "full" else None
    partner = None
    if partner_name is not None:
        rack_of = next(n.rack for n in plan.nodes if n.name == partner_name)
        partner = next(t for t in rack_targets(plan, rack_of) if t.name == partner_name)
    cfg = RunConfig(site, opts.rack, opts.level, tuple(targets), th, workers=opts.workers,
                    timeout_s=opts.timeout_s, soak_s=opts.soak_s, cross_partner=partner)
    ex = executor or _executor(targets + ([partner] if partner else []), opts.access,
                               opts.cancel, seeded_known_hosts(loaded.path.parent))
    with open_burnin_store(store_url) as store:
        run_id = _start(store, site, version, opts, say)
        if fabric[2] is not None:
            store.record_fabric(site, fabric[0] == "pass", json.dumps(fabric[2]), run_id)
        states = store.node_states(site)
        for t in targets:
            if t.name not in states:
                store.set_state(site, t.name, "new", run_id=run_id)
            store.set_state(site, t.name, "burn-in", f"run {run_id} ({opts.level})", run_id)
        try:
            outcome = execute(Runner(cfg, ex, store, run_id, progress=say))
        except BaseException as exc:
            store.finish_run(run_id, "interrupted", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            ex.close()
        if opts.cancel.is_set():
            store.finish_run(run_id, "interrupted", "cancelled")
            raise ExecutionError(f"burn-in run {run_id} of rack {opts.rack} cancelled; "
                                 "continue it with --resume")
        report = RunReport(site, opts.rack, opts.level, th.profile, run_id,
                           [t.name for t in targets], outcome.verdicts, outcome.pairs,
                           outcome.collectives, outcome.isolations, outcome.versions,
                           outcome.notes, fabric[0], fabric[1], store=store.where)
        store.record_verdicts(run_id, outcome.verdicts)
        for node, tools in outcome.versions.items():
            store.record_versions(run_id, node, tools)
        for s in report.summaries():
            if s.status == "fail":
                reason = "; ".join(f"{v.test}{' ' + v.rail if v.rail else ''}: {v.reason}"
                                   for v in s.failures[:3])
                store.set_state(site, s.node, "failed", reason, run_id)
            else:
                store.set_state(site, s.node, "passed", f"run {run_id}", run_id)
        report.states = {n: st.state for n, st in store.node_states(site).items()}
        store.finish_run(run_id, "ok" if report.ok else "failed",
                         f"failed: {', '.join(report.failed_nodes())}"
                         if report.failed_nodes() else "")
    if opts.report_dir is not None:
        write_reports(report, opts.report_dir)
    return report


def host_outcomes(report: RunReport, hosts: Sequence[str]) -> dict[str, Outcome]:
    """A burn-in report as the provisioning burnin phase's per-host outcomes."""
    by_node = {s.node: s for s in report.summaries()}
    out: dict[str, Outcome] = {}
    for h in hosts:
        s = by_node.get(h)
        if s is None:
            out[h] = Outcome("failed", "not in the burn-in report")
        elif s.status == "fail":
            out[h] = Outcome("failed", "burn-in failed: " + "; ".join(
                v.reason for v in s.failures[:3]))
        else:
            out[h] = Outcome("ok", f"burn-in {s.status} (run {report.run_id})")
    return out


def rack_phase(loaded: LoadedSite, plan: Plan, access: Access, store: str | None
               ) -> Callable[[str, Sequence[str], str, threading.Event], dict[str, Outcome]]:
    """The burnin phase of ``gpuctl provision`` (a
    :data:`provision.execute.phases.BurninRack`): each rack's burn-in in this process, in
    the provisioning run's results store, reaching nodes through the same access file."""

    def run(rack: str, hosts: Sequence[str], level: str,
            cancel: threading.Event) -> dict[str, Outcome]:
        opts = BurninOptions(rack=rack, level=level, store=store, access=access,
                             cancel=cancel)
        return host_outcomes(run_burnin(loaded, plan, opts), hosts)

    return run


def write_reports(report: RunReport, directory: Path) -> list[Path]:
    """``burnin-<site>-<rack>-run<N>.{json,xml,html}`` in ``directory``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"burnin-{report.site}-{report.rack}-run{report.run_id}"
        files = {stem.with_suffix(".json"): json.dumps(report.to_json(), indent=2) + "\n",
                 stem.with_suffix(".xml"): junit_xml(report),
                 stem.with_suffix(".html"): render_html(report)}
        for path, text in files.items():
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--report-dir {directory}: cannot write reports ({exc})") from exc
    return sorted(files)
