"""Simulated perftest ``ib_write_lat`` (gpuctl lab hardware simulator: not real hardware).

Latency per message size: about 1.0 us of fabric and HCA latency plus the serialisation time
at the pair's link rate (so a half-rate HCA shows at large sizes), with per-pair jitter.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from provision.lab.hwsim.perftest import Cli, Params, pair_seed, run
from provision.lab.hwsim.personality import rng
from provision.lab.hwsim.state import run_tool


def table(cli: Cli, params: Params, me: dict[str, Any], peer: dict[str, Any]) -> list[str]:
    rate = min(int(me["rate"]), int(peer["rate"]))
    seed = pair_seed(me, peer, params)
    sizes = [1 << k for k in range(1, 24)] if params.all_sizes else [params.size]
    rows = [
        " #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    "
        "t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] "
    ]
    base = rng(seed, "lat").uniform(0.98, 1.08)
    for size in sizes:
        r = rng(seed, "lat", size)
        typical = base + size * 8 / (rate * 1e3) * r.uniform(1.0, 1.02)
        iters = int(params.duration * 1e6 / typical) if params.duration else params.iters
        t_min = typical * r.uniform(0.95, 0.98)
        t_max = typical * r.uniform(3.0, 6.0)
        t_avg = typical * r.uniform(1.005, 1.03)
        stdev = typical * r.uniform(0.02, 0.06)
        p99 = typical * r.uniform(1.1, 1.3)
        p999 = typical * r.uniform(2.0, 3.0)
        rows.append(
            f" {size:<7d} {iters:<10d}  {t_min:<7.2f}        {t_max:<7.2f}      "
            f"{typical:<7.2f}     \t       {t_avg:<7.2f}        \t{stdev:<7.2f}   "
            f"\t\t{p99:<7.2f}    \t\t{p999:<7.2f}"
        )
    return rows


def main(argv: Sequence[str]) -> int:
    return run("lat", argv, table)


if __name__ == "__main__":
    sys.exit(run_tool(main))
