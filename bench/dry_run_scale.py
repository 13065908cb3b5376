"""Wall time of ``gpuctl provision site SITE --dry-run --offline --no-lab --phases all``
(what CI runs on every site change; not a test).

For each site: the whole command in a fresh process (median of three runs), and where that
time goes, measured in this process: load + lint + plan, the run inventory (JSON, with the
stack groups), and the offline check (one ``ansible-playbook --list-tasks`` over every
phase playbook). Sites: the example sites, the mixed SuperPOD + 64 storage servers site of
the tests, and any ``--site DIR`` given.

    python bench/dry_run_scale.py
    python bench/dry_run_scale.py --site inventory/sites/mpft-16k --runs 1
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.execute import offline, phases  # noqa: E402
from provision.execute.access import resolve  # noqa: E402
from provision.execute.inventory import inventory_text  # noqa: E402
from provision.plan.load import load_and_plan  # noqa: E402
from provision.plan.stacks import node_stacks  # noqa: E402
from tests.mixed_site import write_mixed_site  # noqa: E402

DEFAULT_SITES = ("lab", "superpod-h100-4su", "fireflyer-pcie")


def cli_seconds(site: Path, runs: int) -> tuple[float, int]:
    times, rc = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "provision.cli.main", "provision", "site",
                               str(site), "--dry-run", "--offline", "--no-lab", "--phases",
                               "all"], capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - t0)
        rc = rc or proc.returncode
    return statistics.median(times), rc


def parts(site: Path) -> dict[str, float | int]:
    t0 = time.perf_counter()
    _, plan = load_and_plan(site)
    t1 = time.perf_counter()
    t = resolve(plan)
    hosts = [h.name for h in t.hosts]
    with tempfile.TemporaryDirectory(prefix="gpuctl-bench-") as tmp:
        inv = Path(tmp) / "inventory.json"
        inv.write_text(inventory_text(plan, t))
        size = inv.stat().st_size
        t2 = time.perf_counter()
        rep = offline.offline_check(t, hosts, list(phases.PHASES), inv, scope=node_stacks(plan))
        t3 = time.perf_counter()
    gpu = sum(1 for s in node_stacks(plan).values() if "gpu" in s)
    return {"hosts": len(hosts), "gpu hosts": gpu, "plan": t1 - t0, "inventory": t2 - t1,
            "inventory KiB": size // 1024, "ansible": t3 - t2, "problems": len(rep.problems)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", action="append", type=Path, default=[], help="Extra site dir.")
    ap.add_argument("--runs", type=int, default=3, help="CLI runs per site (median).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpuctl-bench-sites-") as tmp:
        sites = [(name, ROOT / "inventory" / "sites" / name) for name in DEFAULT_SITES]
        sites.append(("mixed (superpod + 64 storage)", write_mixed_site(Path(tmp) / "mixed")))
        sites += [(str(p), p) for p in args.site]
        cols = ["site", "hosts", "gpu hosts", "command s", "plan s", "inventory s",
                "inventory KiB", "ansible s", "exit"]
        rows = []
        for name, path in sites:
            p = parts(path)
            wall, rc = cli_seconds(path, args.runs)
            rows.append([name, str(p["hosts"]), str(p["gpu hosts"]), f"{wall:.2f}",
                         f"{p['plan']:.2f}", f"{p['inventory']:.2f}", str(p["inventory KiB"]),
                         f"{p['ansible']:.2f}", str(rc)])
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in rows:
            print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
