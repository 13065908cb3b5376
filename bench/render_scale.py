"""Scale benchmark: rendering the consumer artifacts vs ``gpuctl plan`` without them.

``gpuctl plan`` alone = load + lint + plan + planning artifacts (plan.json, CSVs, SVGs) +
writing them; with artifacts it also renders and writes ``render_artifacts`` (Ansible, Kea,
DNS, OpenSM, ibsim, Slurm, Kubernetes, NetBox, cloud-init). The goal: the 16,384-GPU example
(mpft-16k) stays within 2x. Best of N runs per site, in this process.

    python bench/render_scale.py [SITE ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from provision.plan.build import Plan
from provision.plan.load import load_and_plan
from provision.render.artifacts import render_artifacts
from provision.render.files import write_tree
from provision.render.plan_files import render_plan_files

ROOT = Path(__file__).resolve().parents[1]
SITES = ["lab", "superpod-h100-4su", "fireflyer-pcie", "mpft-16k"]
GOAL = 2.0


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(site: str, runs: int) -> dict[str, float]:
    path = ROOT / "inventory" / "sites" / site
    holder: dict[str, Plan] = {}

    def plan_only() -> None:
        holder["plan"] = load_and_plan(path)[1]

    with tempfile.TemporaryDirectory() as tmp:
        t_plan = best(plan_only, runs)
        plan = holder["plan"]
        t_files = best(lambda: write_tree(Path(tmp) / "a", render_plan_files(plan)), runs)

        def artifacts() -> None:
            fresh = load_and_plan(path)[1]  # a fresh plan, as one gpuctl plan run renders
            t = time.perf_counter()
            files = render_artifacts(fresh)
            write_tree(Path(tmp) / "b", files)
            holder["t"] = time.perf_counter() - t  # type: ignore[assignment]
            holder["n"] = len(files)  # type: ignore[assignment]

        ts = []
        for _ in range(runs):
            artifacts()
            ts.append(float(holder["t"]))  # type: ignore[arg-type]
    alone = t_plan + t_files
    return {"plan": t_plan, "plan_files": t_files, "artifacts": min(ts), "alone": alone,
            "ratio": (alone + min(ts)) / alone, "files": float(holder["n"])}  # type: ignore[arg-type]


def main(argv: list[str]) -> int:
    sites = argv or SITES
    print(f"{'site':<20} {'nodes':>6} {'plan s':>8} {'plan files s':>13} {'artifacts s':>12} "
          f"{'files':>6} {'with/alone':>11}")
    ok = True
    for site in sites:
        runs = 2 if site == "mpft-16k" else 3
        m = measure(site, runs)
        nodes = len(load_and_plan(ROOT / "inventory" / "sites" / site)[1].nodes)
        flag = "" if m["ratio"] <= GOAL else "  > goal"
        ok &= m["ratio"] <= GOAL or site != "mpft-16k"
        print(f"{site:<20} {nodes:>6} {m['plan']:>8.2f} {m['plan_files']:>13.2f} "
              f"{m['artifacts']:>12.2f} {int(m['files']):>6} {m['ratio']:>10.2f}x{flag}")
    print(f"goal: gpuctl plan with artifacts within {GOAL:g}x of plan alone on mpft-16k: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
