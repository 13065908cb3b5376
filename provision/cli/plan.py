"""``gpuctl plan``: compute the plan of a site and write its artifacts."""

from __future__ import annotations

import ctypes
import gc
import json
import sys
from pathlib import Path

import click

from provision.cli.common import SITE_ARG
from provision.errors import UsageError
from provision.loader import load_discovered_guids
from provision.plan.build import summary
from provision.plan.load import load_and_plan
from provision.plan.oversubscription import TIER_LABEL, ratio_text
from provision.render.files import diff_tree
from provision.render.plan_review import REVIEWED, record_diff_lines, review, review_lines
from provision.render.site_files import render_all, write_all

PLAN_GC_THRESHOLD = 50_000
"""Allocations between young-generation collections while planning (Python's default: 700)."""
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
"""glibc's ``mallopt`` parameters (malloc.h)."""


def keep_freed_memory() -> None:
    """Have glibc's malloc keep the memory a plan frees, to hand it out again.

    By default every block over 128 kB-32 MB is an mmap of its own, unmapped when freed, and
    the top of the heap is given back past 128 kB: the next big string (plan.json's tables,
    the CSVs, the pictures: tens of MB each at 131,072 GPUs, built and dropped one after the
    other) is faulted in page by page again, in the render worker too. With no mmaps and no
    trimming, freed memory is reused where it is: at 131,072 GPUs 868k -> 770k page faults
    for the whole command, peak memory as it was (1.09 GB). A no-op where the C library is
    not glibc."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # no C library to load (Windows)
        return
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return  # not glibc (musl's mallopt does nothing; macOS has none)
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(M_MMAP_MAX, 0)
    mallopt(M_TRIM_THRESHOLD, 2**31 - 1)


@click.command("plan")
@SITE_ARG
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Directory to write (default: inventory/sites/<site>/generated).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Summary as a table or as JSON.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if the directory differs from what would be written, "
                   "after a review of devices, addresses and cables changed.")
@click.option("-j", "--jobs", type=click.IntRange(1, 2), default=None,
              help="Render on 1 or 2 processes (default: 2 for plans over 20,000 links on "
                   "a multi-core machine; the output is identical).")
def plan(site: Path, output: Path | None, fmt: str, check: bool, jobs: int | None) -> None:
    """Compute fabric, cabling, addresses, power and BOM for SITE and write the artifacts.

    \b
    Writes plan.json, cabling.csv, addresses.csv, bom.csv, power.csv, the pictures
    (fabric.svg, floor/<hall>.svg, racks/<hall>-<row>.svg, all in plan.html) and the
    configs real systems load (Ansible inventory, Kea, DNS zones, OpenSM, ibsim, Slurm,
    Kubernetes, NetBox, cloud-init). Output is deterministic: commit it and gate CI
    with --check.
    \b
    Examples:
      gpuctl plan inventory/sites/lab -o out/lab
      gpuctl plan inventory/sites/lab --check      # CI drift gate

    \b
    --check prints a review first: devices added/removed/moved, addresses
    added/removed/changed and cables added/removed/moved (count and first
    examples), then which files differ and how.
    """
    # A plan is hundreds of thousands of long-lived records and next to no reference
    # cycles: the collector's default thresholds walk them again and again (15% of the time
    # at 16,384 GPUs); collecting 70x less often leaves peak memory as it was.
    gc.set_threshold(PLAN_GC_THRESHOLD, 20, 100)
    keep_freed_memory()
    loaded, p = load_and_plan(site)
    out = output if output is not None else loaded.path.parent / "generated"
    guids = load_discovered_guids(loaded.path.parent)
    if check:
        files = render_all(p, guids, jobs=jobs)
        drift = diff_tree(out, files, wanted=REVIEWED)
        if drift.files:
            old = {rel: drift.before.get(rel, "" if rel in drift.missing else files[rel])
                   for rel in REVIEWED if rel in files}
            click.echo(f"review of {out} -> the plan now (first examples):")
            for line in review_lines(review(old, files)):
                click.echo(line)
            click.echo(f"files: {len(drift.differ)} differ, {len(drift.missing)} missing, "
                       f"{len(drift.stale)} stale")
            for line in record_diff_lines(drift.lines):
                click.echo(line)
            click.echo(f"gpuctl: {drift.files} generated file(s) in {out} differ from the "
                       f"plan; run gpuctl plan {site} -o {out}", err=True)
            sys.exit(1)
        click.echo(f"ok: {out} matches the plan ({len(files)} files)", err=True)
        return
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: output path exists and is not a directory")
    written = write_all(p, out, guids, jobs=jobs)
    s = summary(p)
    if fmt == "json":
        click.echo(json.dumps(s, indent=2, sort_keys=True))
        return
    _print_summary(s, out, len(written))


def _print_summary(s: dict[str, object], out: Path, nfiles: int) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"plan of {s['site']}", show_header=True)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("nodes / GPUs", f"{s['nodes']} / {s['gpus']}")
    cf = s["compute_fabric"]
    if isinstance(cf, dict):
        t.add_row("compute fabric", f"{cf['topology']}, {cf['tiers']} tiers, "
                  f"{cf['endpoints']}/{cf['max_endpoints']} endpoints")
        if cf.get("design_endpoints"):
            t.add_row("design capacity", f"{cf['design_endpoints']} endpoints: "
                      f"{cf['future_switches']} future switches, {cf['future_links']} future "
                      "links (status future in cabling.csv, future lines in bom.csv)")
        units = cf.get("scalable_units")
        if units:
            t.add_row("scalable units", f"{len(units)}: " + ", ".join(
                f"{u['nodes']}/{u['slots']}" for u in units) + " nodes/slots")
    for name, f in dict(s.get("infiniband") or {}).items():  # type: ignore[call-overload]
        t.add_row(f"{name} fabric", f"{f['topology']}, {f['tiers']} tiers, "
                  f"{f['endpoints']}/{f['max_endpoints']} endpoints")
    for fab, tiers in dict(s["switches"]).items():  # type: ignore[call-overload]
        total = sum(tiers.values())
        t.add_row(f"switches {fab}", f"{total} ({', '.join(f'{k} {v}' for k, v in tiers.items()) if len(tiers) < 6 else 'by tier/plane in plan.json'})")
    for fab, tiers in dict(s["oversubscription"]).items():  # type: ignore[call-overload]
        t.add_row(f"oversubscription {fab}", ", ".join(
            f"{TIER_LABEL[k]} {ratio_text(v)}" for k, v in tiers.items()))
    for k, v in dict(s["cables"]).items():  # type: ignore[call-overload]
        t.add_row(f"physical cables {k}", str(v))
    for k, v in dict(s["optics"]).items():  # type: ignore[call-overload]
        t.add_row(f"optics {k}", str(v))
    for k, v in dict(s["addresses"]).items():  # type: ignore[call-overload]
        t.add_row(f"addresses {k}", str(v))
    pw = dict(s["power_kw"])  # type: ignore[call-overload]
    t.add_row("IT load kW (nameplate / expected)", f"{pw['it_nameplate']:g} / {pw['it_expected']:g}")
    t.add_row("facility kW at PUE", f"{pw['facility']:g}")
    t.add_row("energy per year", f"{s['annual_mwh']:,.0f} MWh, {s['annual_cost']:,.0f} {s['currency']}")
    Console(width=110).print(t)
    click.echo(f"wrote {nfiles} files to {out}")
