"""``gpuctl burnin``: acceptance tests for new racks (run, parse, history)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from provision.burnin.checks import LEVELS
from provision.burnin.probes import KINDS, to_json
from provision.cli.access import access_options, find_access
from provision.cli.common import HISTORY_LIMIT, SITE_ARG
from provision.errors import ParseError, UsageError
from provision.plan.load import load_and_plan

BURNIN_HELP = """Burn-in: prove new hardware works before it is accepted.

\b
A burn-in runs probes on every node of a rack (nvidia-smi, DCGM diagnostics, NVLink,
kernel log Xids, PCIe links, InfiniBand ports, perftest, nccl-tests), parses each tool's
raw output, judges it against thresholds and stores the verdicts as the acceptance record.

\b
  run      run the probes on a rack and judge them
  parse    parse one tool's raw output to JSON (to check a capture by hand)
  history  show stored results

\b
Results DB: --store, else $GPUCTL_BURNIN_STORE (taken as --store is, by run, its --accept
and history alike), else SITE/.gpuctl/provision.db.

\b
Exit status: 0 every node passed, 1 some nodes failed, 2 bad usage or unreadable input
(site, store, a capture parse refuses), 130 interrupted (rerun with --resume).
"""

_KINDS_HELP = "\b\nKINDS (for parse):\n" + "\n".join(f"  {kind}" for kind in KINDS)


@click.group(help=BURNIN_HELP + "\n" + _KINDS_HELP)
def burnin() -> None:
    """The ``burnin`` command group."""


@burnin.command(
    "parse",
    help="Parse a tool's raw output FILE ('-' for stdin) as KIND and print it as JSON.\n\n"
    + _KINDS_HELP,
)
@click.argument("kind", type=click.Choice(list(KINDS)), metavar="KIND")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE")
def parse_cmd(kind: str, file: str) -> None:
    """Print ``KINDS[kind](text)`` as indented JSON; ParseError exits 2 via the main CLI.

    The error names the file: ``gpuctl: error: node7/ibstat.txt: ibstat: ...``.
    """
    try:
        with click.open_file(file, "r", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        result = KINDS[kind](text)
    except ParseError as exc:
        raise ParseError(f"{'<stdin>' if file == '-' else file}: {exc}") from exc
    click.echo(to_json(result))


LEVEL_HELP = ("quick: inventory and health (nvidia-smi, NVLink, Xids, ibstat); standard: + "
              "dcgmi diag -r 2, pairwise ib_write_bw/lat per rail, single-node and rack NCCL "
              "with bad-node isolation; full: + dcgmi -r 3, all_to_all, cross-rack; soak: "
              "standard repeated for --duration, with the trend judged.")


@contextmanager
def _stopping(cancel: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT stop the run at once: running commands are cancelled (their channels
    close, the remote guard ends them), the run is recorded interrupted, exit 130."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            return  # already stopping: let the cleanup finish
        cancel.set()
        click.echo(f"gpuctl: {signal.Signals(signum).name}: stopping (the run is recorded "
                   "as interrupted; continue it with --resume)", err=True)
        raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@burnin.command("run", help="Run the acceptance tests on the nodes of one rack of SITE: "
                "first a rack-scoped live fabric verify, then the tests of --level; print a "
                "per-node verdict table with what to fix. Exit 0 when every node passes, 1 "
                "when some fail, 2 for bad usage or unreadable input, 130 when interrupted. "
                "Everything is recorded in the site's results DB.\n\n" + LEVEL_HELP)
@SITE_ARG
@click.option("--rack", required=True, help="Rack to test, e.g. a01.")
@click.option("--level", type=click.Choice(LEVELS),
              default="standard", show_default=True)
@click.option("--resume", is_flag=True, help="Continue the last interrupted run of this rack "
              "and level (finished probes are not run again).")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write JSON, JUnit XML and HTML reports here.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--duration", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              help="Seconds of repetition for --level soak.")
@click.option("--backend", type=click.Choice(["ssh", "slurm", "kubernetes"]), default="ssh",
              show_default=True, help="ssh runs the tests; slurm/kubernetes print the NCCL "
              "test jobs (sbatch scripts / MPIJob manifests) instead.")
@click.option("--store", default=None, help="Results DB [default: $GPUCTL_BURNIN_STORE, "
              "else SITE/.gpuctl/provision.db].")
@access_options
@click.option("--ssh-user", default=None, help="Login user [default: the access file's, "
              "else root].")
@click.option("--ssh-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Private key [default: the access file's, else the user's own].")
@click.option("--known-hosts", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Host keys to verify against [default: the access file's, else "
              "~/.ssh/known_hosts].")
@click.option("--workers", type=click.IntRange(1, 512), default=16, show_default=True,
              help="Probes running at once.")
@click.option("--timeout", type=click.FloatRange(1, 86400), default=900.0, show_default=True,
              help="Seconds any one probe may take.")
@click.option("--skip-fabric", is_flag=True, help="Do not run the rack-scoped fabric verify.")
@click.option("--accept", is_flag=True, help="When every node passes, move them to "
              "production in the lifecycle record.")
def run_cmd(site: Path, rack: str, level: str, resume: bool, report_dir: Path | None,
            fmt: str, duration: float, backend: str, store: str | None,
            access_file: Path | None, lab_dir: Path | None, no_lab: bool,
            ssh_user: str | None, ssh_key: Path | None,
            known_hosts: Path | None, workers: int, timeout: float, skip_fabric: bool,
            accept: bool) -> None:
    from provision.burnin.session import BurninOptions, run_burnin

    loaded, plan = load_and_plan(site)
    if backend != "ssh":
        click.echo(_jobs(plan, rack, backend), nl=False)
        return
    from provision.execute.rundir import run_dir
    from provision.storefile import STATE_DIR

    access = find_access(site, loaded.path.parent, access_file, lab_dir, no_lab)
    access = access.with_ssh(user=ssh_user, key=ssh_key, known_hosts=known_hosts)
    opts = BurninOptions(rack=rack, level=level, resume=resume, report_dir=report_dir,
                         store=store, access=access, workers=workers, timeout_s=timeout,
                         soak_s=duration, skip_fabric=skip_fabric)

    def say(message: str) -> None:
        click.echo(f"burnin: {message}", err=True)

    with _stopping(opts.cancel), run_dir(loaded.path.parent / STATE_DIR, say):
        report = run_burnin(loaded, plan, opts, say=say)
    if accept and report.ok:
        _accept(opts, loaded.path.parent, report.site, report.nodes, report.run_id)
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        from provision.burnin.report import render_text

        click.echo(render_text(report), nl=False)
    sys.exit(0 if report.ok else 1)


def _accept(opts: Any, site_dir: Path, site: str, nodes: list[str], run_id: int) -> None:
    from provision.burnin.store import open_burnin_store, store_url

    with open_burnin_store(store_url(opts.store, site_dir)) as st:
        for node in nodes:
            st.set_state(site, node, "production", f"accepted after run {run_id}", run_id)


def _jobs(plan: Any, rack: str, backend: str) -> str:
    from provision.burnin.schedule import leaf_groups
    from provision.burnin.targets import mpijob_manifest, nccl_argv, rack_targets, sbatch_script

    targets = rack_targets(plan, rack)
    names = [t.name for t in targets]
    groups = {f"rack-{rack}": names}
    groups.update({f"leaf-{leaf}": members for leaf, members in
                   leaf_groups(names, {t.name: t.leaf for t in targets}).items()
                   if len(members) >= 2 and len(members) < len(names)})
    parts = []
    for label, members in groups.items():
        if backend == "slurm":
            argv = nccl_argv("all_reduce_perf", 1, "256M", "8G")
            parts.append(f"# --- {label} ---\n"
                         + sbatch_script(plan.site.site.name, label, members, targets[0].gpus,
                                         argv))
        else:
            parts.append(mpijob_manifest(plan, members, "all_reduce_perf", "256M", "8G")
                         .rstrip("\n") + "\n---\n")
    return "".join(parts)


@burnin.command("history", help="Show the stored burn-in runs of SITE and each node's "
                "lifecycle state (new, burn-in, passed, failed, production).")
@SITE_ARG
@click.option("--store", default=None, help="Results DB [default: $GPUCTL_BURNIN_STORE, "
              "else SITE/.gpuctl/provision.db].")
@HISTORY_LIMIT
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def history_cmd(site: Path, store: str | None, count: int, fmt: str) -> None:
    from provision.burnin.store import ENV_STORE, open_burnin_store, store_url
    from provision.storefile import history_path

    loaded, plan = load_and_plan(site)
    name = plan.site.site.name
    path = history_path(store or os.environ.get(ENV_STORE), loaded.path.parent)
    url = store_url(store, loaded.path.parent)
    runs: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    if path is not None:
        with open_burnin_store(path) as st:
            for r in st.burnin_runs(name, count):
                bad = sorted({v.node for v in st.verdicts(r.id) if v.failed})
                runs.append({"run": r.id, "status": r.status, "rack": r.options.get("rack"),
                             "level": r.options.get("level"), "plan": r.plan_version,
                             "started": _ts(r.started_at), "failed_nodes": bad,
                             "detail": r.detail})
            nodes = [{"node": s.node, "state": s.state, "reason": s.reason, "run": s.run_id,
                      "since": _ts(s.at)} for s in st.node_states(name).values()]
    if fmt == "json":
        click.echo(json.dumps({"site": name, "runs": runs, "nodes": nodes}, indent=2))
        return
    if not runs and not nodes:
        click.echo(f"burn-in {name}: no runs recorded in {url}")
        return
    for row in runs:
        click.echo(f"run {row['run']:>4} {row['started']} rack {row['rack']} "
                   f"{row['level']:<8} {row['status']:<11} "
                   f"{', '.join(row['failed_nodes']) or '-'}")
    for n in sorted(nodes, key=lambda x: str(x["node"])):
        click.echo(f"{n['node']:<20} {n['state']:<10} {n['since']}  {n['reason']}")


def _ts(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
