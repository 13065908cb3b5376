"""Wall time per provision phase on lab sites of N hosts: gpuctl's settings (forks = hosts,
SSH pipelining, ControlPersist) against Ansible's defaults (forks 5, no pipelining, no
ControlPersist). Each (size, mode) gets a freshly built lab, so both do the same work.

    sudo python bench/provision_scale.py --sizes 4,16

Needs root and the lab's tools. Sizes whose site does not plan (the lab site scaled up: 4
hosts per rack) are reported as such. Prints a table; nothing is written outside a temp dir.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from provision_labspec import provision_spec  # noqa: E402

from provision import lab  # noqa: E402
from provision.errors import GpuctlError  # noqa: E402
from provision.execute import session  # noqa: E402
from provision.execute.access import FILE_NAME, load  # noqa: E402
from provision.execute.display import QuietReporter  # noqa: E402
from provision.execute.store import open_store  # noqa: E402
from provision.plan.load import load_and_plan  # noqa: E402

PHASES = ("preflight", "image", "base")


def scaled_site(n: int, tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "inventory" / "sites" / "lab" / "site.yaml").read_text())
    racks = -(-n // 4)
    data["node_groups"][0]["count"] = n
    data["halls"][0]["rows"][0]["racks"] = racks + 1
    data["halls"][0]["power_capacity_kw"] = 60 * (racks + 1)
    data["site"]["power_capacity_mw"] = 0.1 * (racks + 1)
    site = tmp / f"n{n}" / "lab"
    site.mkdir(parents=True)
    (site / "site.yaml").write_text(yaml.safe_dump(data))
    return site


def measure(n: int, defaults: bool, tmp: Path, site: Path) -> dict[str, float]:
    loaded, plan = load_and_plan(site)
    names = [node.name for node in plan.nodes]
    lab_name = f"pb{os.getpid() % 10000}{'d' if defaults else 't'}"
    root = tmp / lab_name
    spec = provision_spec(lab_name, names, seed=os.getpid() + n)
    try:
        lab.up(spec, root)
        db = tmp / f"{lab_name}-{n}.db"
        opts = session.SessionOptions(phases=PHASES, access=load(root / FILE_NAME),
                                      store=str(db),
                                      forks=5 if defaults else None,
                                      ansible_defaults=defaults)
        started = time.monotonic()
        report = session.run_site(loaded, plan, opts, QuietReporter())
        total = time.monotonic() - started
        with open_store(db) as st:
            rows = st._conn.execute(  # noqa: SLF001 - a benchmark reading its own DB
                "SELECT phase, finished_at - started_at FROM phase_results WHERE run_id=?",
                (report.run_id,)).fetchall()
        times = {str(p): float(t) for p, t in rows}
        times["total"] = total
        times["failed"] = float(len(report.failed_hosts()))
        return times
    finally:
        lab.down(lab_name, root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4", help="comma-separated host counts (4,16,64)")
    parser.add_argument("--modes", default="defaults,gpuctl",
                        help="comma-separated: defaults (Ansible's), gpuctl (tuned)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [m.strip() == "defaults" for m in args.modes.split(",")]
    lab.require_root()
    # a timeout's SIGTERM still takes the lab down (finally blocks run on SystemExit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    header = f"{'hosts':>5} {'mode':<16} " + " ".join(f"{p:>10}" for p in PHASES) + \
        f" {'total':>8} {'failed':>6}"
    lines = [header]
    with tempfile.TemporaryDirectory(prefix="gpuctl-pbench-") as t:
        tmp = Path(t)
        for n in sizes:
            try:
                site = scaled_site(n, tmp)
                load_and_plan(site)
            except GpuctlError as exc:
                lines.append(f"{n:>5} (site does not plan: {exc})")
                continue
            for defaults in modes:
                mode = "ansible defaults" if defaults else "gpuctl"
                r = measure(n, defaults, tmp, site)
                lines.append(f"{n:>5} {mode:<16} "
                             + " ".join(f"{r.get(p, 0.0):>9.1f}s" for p in PHASES)
                             + f" {r['total']:>7.1f}s {int(r['failed']):>6}")
                print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
