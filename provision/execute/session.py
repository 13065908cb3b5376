"""From a site path and command-line options to a provision run (the CLI's one call).

Joins the plan with how its hosts are reached (the access file the CLI found, see
:mod:`provision.execute.access`), picks the hosts, renders the inventory into a fresh
temporary directory, takes the per-site lock, opens the store and hands everything to
:class:`provision.execute.phases.Runner`.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import ExecutionError
from provision.execute import ansible, inventory, phases, steps
from provision.execute.access import Access, Targets, resolve
from provision.execute.display import Reporter
from provision.execute.phases import BurninRack
from provision.execute.redfish import env_credentials
from provision.execute.rundir import run_dir
from provision.execute.store import open_store, site_lock
from provision.image.phase import site_imaging
from provision.loader import LoadedSite
from provision.plan.build import Plan
from provision.render.plan_files import plan_json, plan_version
from provision.storefile import STATE_DIR, default_path, history_path, seeded_known_hosts


@dataclass
class SessionOptions:
    phases: Sequence[str] = ("preflight", "image", "base")
    limit: str | None = None
    dry_run: bool = False
    resume: bool = False
    forks: int | None = None
    max_fail_percent: float = 100.0
    store: str | None = None
    access: Access = field(default_factory=Access)  # how hosts are reached (--access)
    burnin: BurninRack | None = None  # the burnin phase's rack runner (the CLI passes it)
    verify_tls: bool = True
    credential_files: Sequence[Path] = ()
    boot_timeout: float | None = None
    reimage: bool = False  # image: also nodes that already run the planned image digest
    extravars: dict[str, Any] = field(default_factory=dict)
    ansible_defaults: bool = False  # benchmark: forks 5, no pipelining, no ControlPersist
    cancel: threading.Event = field(default_factory=threading.Event)


def site_dir(loaded: LoadedSite) -> Path:
    return loaded.path.parent


def build_targets(loaded: LoadedSite, plan: Plan, opts: SessionOptions) -> Targets:
    keys = sorted(p.read_text().strip() for p in (site_dir(loaded) / "admin_keys").glob("*.pub"))
    return resolve(plan, opts.access, verify_tls=opts.verify_tls,
                   credential_files=opts.credential_files, admin_keys=keys,
                   known_hosts=seeded_known_hosts(site_dir(loaded)))


def inventory_hosts(hosts: Sequence[str], extravars: Mapping[str, Any]) -> set[str]:
    """Hosts a run's inventory needs: the selected ones plus the Kubernetes control-plane
    host that joins are delegated to (``kubernetes_node_control_plane_host``)."""
    keep = set(hosts)
    cp = extravars.get("kubernetes_node_control_plane_host")
    if isinstance(cp, str) and cp:
        keep.add(cp)
    return keep


@contextmanager
def rendered_inventory(plan: Plan, t: Targets,
                       only: Collection[str] | None = None,
                       tmp_dir: Path | None = None) -> Iterator[Path]:
    """The run's inventory in a temporary file (under ``tmp_dir``: the run directory's
    ``tmp/``); with ``only``, just those hosts.

    Ansible parses every host of an inventory before its first task (minutes for a
    16,384-node site), so a run limited to a rack gets an inventory of that rack.
    """
    if only is not None:
        keep = set(only)
        t = dataclasses.replace(t, hosts=tuple(h for h in t.hosts if h.name in keep))
    with tempfile.TemporaryDirectory(prefix="gpuctl-inv-", dir=tmp_dir) as tmp:
        path = Path(tmp) / "inventory.json"
        path.write_text(inventory.inventory_text(plan, t))
        yield path


def plan_freshness(loaded: LoadedSite, plan: Plan) -> str:
    """Compare the plan with ``generated/plan.json`` (if the site keeps one); raise when
    it is stale, so hosts are never provisioned from an outdated plan."""
    generated = site_dir(loaded) / "generated" / "plan.json"
    if not generated.exists():
        return f"no {generated} to compare (plan computed from site.yaml)"
    if generated.read_text() != plan_json(plan):
        raise ExecutionError(f"{generated}: stale, it differs from the plan of {loaded.path}; "
                             f"run gpuctl plan {site_dir(loaded)} first")
    return f"{generated} is up to date"


def boot_config(loaded: LoadedSite, plan: Plan) -> str:
    """Where the image phase's network boot gets its configuration: the Kea config (PXE ->
    iPXE) and the autoinstall seeds per node group that ``gpuctl plan`` renders."""
    gen = site_dir(loaded) / "generated"
    paths = [gen / "dhcp" / "kea-dhcp4.conf"] + [
        gen / "cloud-init" / g / "user-data" for g in sorted({n.group for n in plan.nodes})]
    missing = [p for p in paths if not p.exists()]
    text = "boot config: " + ", ".join(str(p) for p in paths)
    if missing:
        text += f" ({len(missing)} not rendered yet: run gpuctl plan {site_dir(loaded)})"
    return text


def run_site(loaded: LoadedSite, plan: Plan, opts: SessionOptions, reporter: Reporter,
             *, targets: Targets | None = None) -> phases.RunReport:
    t = targets or build_targets(loaded, plan, opts)
    hosts = inventory.select(t, opts.limit)
    if not hosts:
        raise ExecutionError(f"--limit {opts.limit!r}: no hosts selected")
    forks = opts.forks or max(1, min(len(hosts), 50))
    tuning = ansible.Tuning.defaults() if opts.ansible_defaults else ansible.Tuning(forks=forks)
    settings = steps.settings_for(
        t.access, env_credentials(), opts.boot_timeout,
        imaging=site_imaging(site_dir(loaded) / STATE_DIR, plan, reimage=opts.reimage,
                             access=t.access)
        if t.access.network_boot else None)
    version = plan_version(plan)
    if "preflight" in opts.phases:
        reporter.note("preflight: lint clean; " + plan_freshness(loaded, plan))
    if "image" in opts.phases:
        reporter.note("image: " + boot_config(loaded, plan))
    if t.access.source is not None:
        reporter.note(f"access: {t.access.source}"
                      + (f" ({t.access.description})" if t.access.description else ""))
    store_url = opts.store or str(default_path(site_dir(loaded)))
    lock = site_dir(loaded) / STATE_DIR / "provision.lock"
    with site_lock(lock, f"site {t.site}"), open_store(store_url) as store, \
            run_dir(lock.parent, reporter.note) as workdir, \
            rendered_inventory(plan, t, inventory_hosts(hosts, opts.extravars),
                               workdir.tmp) as inv:
        runner = phases.Runner(targets=t, store=store, reporter=reporter,
                               executor=steps.ThreadExecutor(forks),
                               client=steps.make_client_factory(t.credential_files),
                               cancel=opts.cancel)
        return runner.run(phases.RunOptions(
            phases=opts.phases, hosts=hosts, plan_version=version, inventory=inv,
            dry_run=opts.dry_run, resume=opts.resume, max_fail_percent=opts.max_fail_percent,
            tuning=tuning, settings=settings, extravars=opts.extravars, plan=plan,
            site_path=site_dir(loaded), workdir=workdir, burnin=opts.burnin))


def history(loaded: LoadedSite, store: str | None, limit: int = 20) -> list[dict[str, str]]:
    path = history_path(store, site_dir(loaded))
    if path is None:
        return []
    rows: list[dict[str, str]] = []
    with open_store(path) as st:
        for r in st.history(site=loaded.site.site.name, limit=limit):
            results = st.results_for(r.id)
            bad = sorted({x.host for x in results if x.status in ("failed", "unreachable")})
            rows.append({
                "run": str(r.id), "kind": r.kind, "plan": r.plan_version, "status": r.status,
                "started": _ts(r.started_at),
                "took": "" if r.finished_at is None else f"{r.finished_at - r.started_at:.1f}s",
                "phases": ", ".join(f"{p}={s}" for p, s, _ in st.phases(r.id)),
                "failed hosts": ", ".join(bad),
            })
    return rows


def _ts(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
