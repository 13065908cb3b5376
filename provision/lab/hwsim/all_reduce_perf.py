"""Simulated nccl-tests ``all_reduce_perf`` (gpuctl lab hardware simulator: not real hardware).

See ``provision.lab.hwsim.nccl`` for the options and the bandwidth model.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from provision.lab.hwsim.nccl import run_single
from provision.lab.hwsim.state import load_current, run_tool


def main(argv: Sequence[str]) -> int:
    return run_single("all_reduce_perf", argv, load_current())


if __name__ == "__main__":
    sys.exit(run_tool(main))
