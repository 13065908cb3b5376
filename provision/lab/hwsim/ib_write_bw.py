"""Simulated perftest ``ib_write_bw`` (gpuctl lab hardware simulator: not real hardware).

Bandwidth per message size: the pair's line bandwidth (see ``perftest``) and a message-rate
limit of about 2.6 Mpps per QP (up to 8 QPs), combined with a sharp knee; small per-pair
jitter. ``-D`` (duration mode) prints a peak of 0.00 and derives the iteration count, as
perftest does; ``--report_gbits`` switches MB/sec (perftest's MB is 2^20 bytes) to Gb/sec
(10^9 bits).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from provision.lab.hwsim.perftest import Cli, Params, pair_seed, run
from provision.lab.hwsim.personality import rng
from provision.lab.hwsim.state import run_tool


def bandwidth_gbps(line_gbps: float, size: int, qps: int, mpps: float) -> float:
    """Achieved Gb/s for ``size``-byte writes on ``qps`` QPs over a ``line_gbps`` path."""
    msg_limit = size * 8 * mpps * min(qps, 8) / 1e3
    return float((line_gbps**-4 + msg_limit**-4) ** -0.25)


def table(cli: Cli, params: Params, me: dict[str, Any], peer: dict[str, Any]) -> list[str]:
    unit = "Gb/sec" if cli.gbits else "MB/sec"
    line = min(float(me["bw"]), float(peer["bw"]))
    seed = pair_seed(me, peer, params)
    sizes = [1 << k for k in range(1, 24)] if params.all_sizes else [params.size]
    rows = [f" #bytes     #iterations    BW peak[{unit}]    BW average[{unit}]   MsgRate[Mpps]"]
    for size in sizes:
        r = rng(seed, "bw", size)
        avg = bandwidth_gbps(line, size, params.qps, 2.6 * r.uniform(0.98, 1.02))
        avg *= r.uniform(0.996, 1.002)
        peak = 0.0 if params.duration else avg * r.uniform(1.0, 1.003)
        iters = int(avg * 1e9 / 8 / size * params.duration) if params.duration else params.iters
        mpps = avg * 1e9 / 8 / size / 1e6
        scale = 1.0 if cli.gbits else 1e9 / 8 / 2**20
        rows.append(
            f" {size:<7d}    {iters:<7d}          {peak * scale:<7.2f}            "
            f"{avg * scale:<7.2f}\t\t   {mpps:<7.6f}"
        )
    return rows


def main(argv: Sequence[str]) -> int:
    return run("bw", argv, table)


if __name__ == "__main__":
    sys.exit(run_tool(main))
