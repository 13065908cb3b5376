"""``gpuctl provision site|rack|history``: phased, resumable bring-up (Redfish + Ansible)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from provision.cli.access import access_options, find_access
from provision.cli.common import HISTORY_LIMIT, SITE_ARG
from provision.plan.load import load_and_plan

PHASES_HELP = ("Comma-separated phases, in any order (run in bring-up order): preflight, "
               "image, base, nvidia, fabric, kubernetes, platform, burnin; or all.")


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--phases", default="preflight,image,base", show_default=True,
                     help=PHASES_HELP),
        click.option("--limit", default=None, help="Hosts: 'rack=a01,a02', 'group=gpu' or "
                     "host names separated by commas."),
        click.option("--dry-run", is_flag=True, help="Ansible check mode + diff; print the "
                     "Redfish actions instead of doing them."),
        click.option("--offline", is_flag=True, help="With --dry-run: syntax-check and list "
                     "tasks of every phase against the rendered inventory; no host needed."),
        click.option("--reimage", is_flag=True, help="image: re-image nodes that already "
                     "run the planned image digest (they are left alone otherwise)."),
        click.option("--resume", is_flag=True, help="Skip hosts and phases that already "
                     "succeeded for this plan version (preflight always runs)."),
        click.option("--forks", type=click.IntRange(1, 500), default=None,
                     help="Parallel hosts [default: number of hosts, at most 50]."),
        click.option("--max-fail-percent", type=click.FloatRange(0, 100), default=100.0,
                     show_default=True, help="Stop before the next phase when more hosts "
                     "than this failed a phase (failed hosts never stop the others)."),
        click.option("--store", default=None, help="Results DB: sqlite:///PATH or a path "
                     "[default: SITE/.gpuctl/provision.db]."),
        click.option("--bmc-credentials", "bmc_credentials", multiple=True,
                     type=click.Path(path_type=Path, dir_okay=False),
                     help="File (mode 0600) of GPUCTL_BMC_USER=/GPUCTL_BMC_PASSWORD= lines; "
                     "GPUCTL_BMC_PASSWORD[host]= overrides one host."),
        click.option("--insecure-bmc-tls", is_flag=True, help="Do not verify BMC TLS "
                     "certificates (self-signed BMCs); off by default."),
        click.option("--boot-timeout", type=click.FloatRange(1, 86400), default=None,
                     help="Seconds a host may take to come back on SSH after the power "
                     "cycle [default: the access file's timeouts.boot_s, else 600]."),
        click.option("--extra-vars", "extra_vars", type=click.Path(path_type=Path,
                     dir_okay=False, exists=True), default=None, help="YAML file of extra "
                     "variables for the phase playbooks (e.g. lab apt repositories)."),
        click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                     show_default=True),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return access_options(fn)


@click.group("provision")
def provision() -> None:
    """Bring hosts up in phases: preflight, image (Redfish PXE + power cycle), base, nvidia,
    fabric, kubernetes (Ansible playbooks), platform (the site's Pulumi stack) and burnin
    (`gpuctl burnin run` per rack). Results are stored per plan version; --resume continues
    where an interrupted or failed run stopped."""


@contextmanager
def _signals(cancel: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM ask the run to stop cleanly; a second SIGINT stops at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        cancel.set()
        click.echo(f"gpuctl: {signal.Signals(signum).name}: stopping after the current "
                   "step (the run is recorded as interrupted)", err=True)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run(site: Path, rack: str | None, **kw: Any) -> None:
    from rich.console import Console

    from provision.burnin.session import rack_phase
    from provision.errors import UsageError
    from provision.execute import offline, phases, session
    from provision.execute.display import RichReporter, summary_table
    from provision.execute.inventory import select
    from provision.plan.stacks import node_stacks, split
    from provision.render.plan_files import plan_version

    fmt = kw.pop("fmt")
    console = Console(stderr=fmt == "json")
    limit = kw["limit"]
    if rack is not None:
        if limit:
            raise UsageError("provision rack: use --limit with provision site instead")
        limit = f"rack={rack}"
    if kw["offline"] and not kw["dry_run"]:
        raise UsageError("--offline only goes with --dry-run")
    loaded, plan = load_and_plan(site)
    access = find_access(site, loaded.path.parent, kw["access_file"], kw["lab_dir"],
                         kw["no_lab"])
    opts = session.SessionOptions(
        phases=phases.parse_phases(kw["phases"]), limit=limit, dry_run=kw["dry_run"],
        resume=kw["resume"], forks=kw["forks"], max_fail_percent=kw["max_fail_percent"],
        store=kw["store"],
        access=access, burnin=rack_phase(loaded, plan, access, kw["store"]),
        verify_tls=not kw["insecure_bmc_tls"], credential_files=kw["bmc_credentials"],
        boot_timeout=kw["boot_timeout"], reimage=kw["reimage"], extravars=_extra_vars(kw["extra_vars"]))
    targets = session.build_targets(loaded, plan, opts)
    hosts = select(targets, limit)
    scope = node_stacks(plan)
    console.print(summary_table(
        f"provision {targets.site}: {len(hosts)} host(s), plan {plan_version(plan)}"
        + (" (dry run)" if opts.dry_run else ""),
        [{"phase": p, "hosts": _hosts(split(p, hosts, scope)[0]) or "none (skipped)",
          "does": _DOES.get(p, "Ansible: playbooks/" + p + ".yml")
                  if p in phases.available() else "not available yet (skipped)"}
         for p in opts.phases], ["phase", "hosts", "does"]))
    if kw["offline"]:
        from provision.execute.rundir import run_dir
        from provision.storefile import STATE_DIR

        # its temp files (inventory, the combined playbook, Ansible's) in a run directory
        with run_dir(session.site_dir(loaded) / STATE_DIR, console.print) as rd, \
                session.rendered_inventory(plan, targets, session.inventory_hosts(
                    hosts, opts.extravars), rd.tmp) as inv:
            rep = offline.offline_check(targets, hosts, opts.phases, inv, scope=scope)
        skipped: dict[str, list[tuple[str, list[str]]]] = {}
        for phase, why, phase_hosts in rep.skipped:
            skipped.setdefault(phase, []).append((why, phase_hosts))
        for phase, phase_hosts, tasks in rep.phases:
            console.print(f"[bold]{phase}[/] on {_hosts(phase_hosts) or 'no host'}:")
            for why, skip in skipped.get(phase, []):
                console.print(f"  (skips {len(skip)} host(s), {why}: {_hosts(skip)})",
                              markup=False, highlight=False)
            for task in tasks if phase_hosts else []:
                console.print(f"  - {task}", markup=False, highlight=False)
        for problem in rep.problems:
            console.print(f"[red]problem:[/] {problem}", highlight=False)
        if fmt == "json":
            click.echo(json.dumps({
                "phases": [{"phase": p, "hosts": h, "tasks": t if h else [],
                            "skipped": [{"why": why, "hosts": s}
                                        for why, s in skipped.get(p, [])]}
                           for p, h, t in rep.phases],
                "problems": rep.problems}, indent=2))
        sys.exit(1 if rep.problems else 0)
    with _signals(opts.cancel):
        try:
            report = session.run_site(loaded, plan, opts, RichReporter(console),
                                      targets=targets)
        except phases.Interrupted as exc:
            # Recorded interrupted and the store closed; a host still inside a BMC call
            # must not hold the exit (SIGTERM ends a run within 5 s): leave without joining.
            if phases.strays():
                click.echo(f"gpuctl: error: {exc}", err=True)
                sys.stdout.flush()
                os._exit(exc.exit_code)
            raise
    failed = report.failed_hosts()
    for (phase, host), o in sorted(report.results.items()):
        if o.status in ("failed", "unreachable"):
            console.print(f"[red]{host}[/]: {phase} {o.status}: {o.detail}", highlight=False)
    console.print(f"run {report.run_id}: {report.status}; "
                  f"{len(hosts) - len(failed)} of {len(hosts)} host(s) ok")
    if fmt == "json":
        click.echo(json.dumps({
            "run": report.run_id, "status": report.status, "phases": report.phase_status,
            "results": [{"phase": p, "host": h, "status": o.status, "detail": o.detail,
                         "stats": dict(o.stats)}
                        for (p, h), o in sorted(report.results.items())]}, indent=2))
    sys.exit(1 if failed else 0)


def _extra_vars(path: Path | None) -> dict[str, Any]:
    from provision.errors import UsageError

    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--extra-vars {path}: not readable YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"--extra-vars {path}: must be a mapping of variable names")
    return data


_DOES = {
    "preflight": "lint + plan freshness, BMC credentials, SSH host keys, clock skew",
    "image": "Redfish: one-time PXE boot + power cycle, then wait for SSH",
    "base": "Ansible: hostname, /etc/hosts, chrony, RDMA sysctls/limits/hugepages, kernel "
            "cmdline, admin users, site apt sources, netplan",
    "platform": "Pulumi: the site's platform stack (GPU/Network Operators, Kueue, MPI "
                "Operator)",
    "burnin": "gpuctl burnin run SITE --rack R for each rack with GPU nodes",
}


def _hosts(hosts: list[str]) -> str:
    return ", ".join(hosts) if len(hosts) <= 6 else f"{', '.join(hosts[:5])} ... ({len(hosts)})"


@provision.command("site")
@SITE_ARG
@_options
def site_cmd(site: Path, **kw: Any) -> None:
    """Provision every host of SITE (or those chosen by --limit).

    \b
    Exit status: 0 all hosts ok, 1 some hosts failed, 2 bad usage or unreadable input
    (site, store, files), 130 interrupted (SIGINT/SIGTERM; rerun with --resume).
    Example: gpuctl provision site inventory/sites/lab --phases preflight,image,base
    """
    _run(site, None, **kw)


@provision.command("rack")
@SITE_ARG
@click.argument("rack")
@_options
def rack_cmd(site: Path, rack: str, **kw: Any) -> None:
    """Provision the hosts of one RACK of SITE (same as --limit rack=RACK).

    \b
    Exit status: as `gpuctl provision site` (0 ok, 1 some hosts failed, 2 bad usage or
    unreadable input, 130 interrupted).
    Example: gpuctl provision rack inventory/sites/lab a01 --phases base --resume
    """
    _run(site, rack, **kw)


@provision.command("history")
@SITE_ARG
@click.option("--store", default=None, help="Results DB [default: SITE/.gpuctl/provision.db].")
@HISTORY_LIMIT
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def history_cmd(site: Path, store: str | None, count: int, fmt: str) -> None:
    """Past provision runs of SITE, latest first."""
    from rich.console import Console

    from provision.execute import session
    from provision.execute.display import summary_table
    from provision.loader import load_site

    rows = session.history(load_site(site), store, count)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    Console().print(summary_table(f"provision history ({len(rows)} runs)", rows, [
        "run", "kind", "plan", "status", "started", "took", "phases", "failed hosts"]))
