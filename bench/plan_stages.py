"""Where planning time goes (not a test): load, lint and each stage of ``build_plan``.

Builds the synthetic sites of ``bench/plan_scale.py`` and times, in this one process with
``time.perf_counter`` and with the collector thresholds ``gpuctl plan`` sets, the loader,
lint (which builds the plan once) and every planner that
``build_plan`` calls (each wrapped for the run; nested calls count in their caller too).

    python bench/plan_stages.py                 # 16,384 and 131,072 GPUs
    python bench/plan_stages.py 16384           # some sizes
    python bench/plan_stages.py --cpu           # CPU seconds of this process, not wall

On this shared 2-core VM the wall clock counts the neighbours' work too; ``--cpu`` times
with ``time.process_time`` instead, steadier when the load average is above 1.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plan_scale  # noqa: E402

from provision.cli.plan import PLAN_GC_THRESHOLD  # noqa: E402
from provision.loader import load_site  # noqa: E402
from provision.plan import build, cabling, lint  # noqa: E402

CLOCK = [time.perf_counter]

STAGES = ("layout_racks", "floor_grid", "place_nodes", "RackSpace", "reserve_oob_tors",
          "design_members", "build_compute", "_place_by_tier", "split_future", "build_ethernet",
          "seat_reserved", "place_switches", "plan_power", "cable_management", "_ends",
          "CableMaker", "plan_addresses", "plan_bom", "plan_future_bom")


def timed(times: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = CLOCK[0]()
        try:
            return fn(*args, **kwargs)
        finally:
            times[name] += CLOCK[0]() - t
    return wrapper


def measure(gpus: int, tmp: Path) -> dict[str, float]:
    d = tmp / f"bench-{gpus}"
    d.mkdir()
    (d / "site.yaml").write_text(yaml.safe_dump(plan_scale.site(gpus), sort_keys=False))
    times: dict[str, float] = defaultdict(float)
    saved = {n: getattr(build, n) for n in STAGES if hasattr(build, n)}
    cm = cabling.CableMaker
    saved_cables = cm.cables
    try:
        for n, fn in saved.items():
            if n != "CableMaker":
                setattr(build, n, timed(times, n, fn))
        cm.cables = timed(times, "cabling (CableMaker.cables)", saved_cables)  # type: ignore[method-assign]
        gc.collect()
        t = CLOCK[0]()
        loaded = load_site(d)
        times["load"] = CLOCK[0]() - t
        real_build = build.build_plan

        def build_timed(*a: Any, **k: Any) -> Any:
            t = CLOCK[0]()
            try:
                return real_build(*a, **k)
            finally:
                times["build_plan (total)"] += CLOCK[0]() - t
        lint.build_plan = build_timed  # type: ignore[attr-defined]
        t = CLOCK[0]()
        plan, findings = lint.lint(loaded)
        times["lint + build_plan"] = CLOCK[0]() - t
        lint.build_plan = real_build  # type: ignore[attr-defined]
        assert plan is not None, [f.message for f in findings if f.severity == "error"][:3]
        times["lint only"] = times["lint + build_plan"] - times["build_plan (total)"]
        times["_links"] = float(len(plan.cables))
    finally:
        for n, fn in saved.items():
            setattr(build, n, fn)
        cm.cables = saved_cables  # type: ignore[method-assign]
    return times


def main() -> None:
    # as `gpuctl plan` runs the planners (provision/cli/plan.py)
    gc.set_threshold(PLAN_GC_THRESHOLD, 20, 100)
    if "--cpu" in sys.argv:
        CLOCK[0] = time.process_time
    sizes = [int(a) for a in sys.argv[1:] if not a.startswith("--")] or [16384, 131072]
    results = {}
    root = Path(__file__).resolve().parents[1] / "out"
    root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="stages-") as tmp:
        for g in sizes:
            results[g] = measure(g, Path(tmp))
    names = ["load", "lint + build_plan", "lint only", "build_plan (total)",
             *[n for n in (*STAGES, "cabling (CableMaker.cables)") if n != "CableMaker"]]
    unit = "CPU s" if CLOCK[0] is time.process_time else "wall s"
    print(f"{'stage (' + unit + ')':<30}" + "".join(f"{g:>10}" for g in sizes))
    for n in names:
        if not any(n in r for r in results.values()):
            continue
        print(f"{n:<30}" + "".join(f"{results[g].get(n, 0.0):>10.3f}" for g in sizes))
    print(f"{'links (cables)':<30}" + "".join(f"{int(results[g]['_links']):>10}" for g in sizes))


if __name__ == "__main__":
    main()
