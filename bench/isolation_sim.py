"""Rounds and tests needed to isolate 1-3 bad nodes among 8..1,024 (simulated oracle).

The oracle answers like a collective: a group fails when it holds a bad node. Each row is
the worst and mean over ``--trials`` random placements of the bad nodes; ``bound`` is the
O(log n) budget the tests assert: ceil(log2 n) rounds of bisection, 1 confirmation round,
and up to d more when lone nodes outnumber the known-good partners (small n, several bad). Usage::

    python bench/isolation_sim.py [--trials 20] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provision.burnin.isolate import Group, isolate  # noqa: E402

SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
BAD_COUNTS = (1, 2, 3)


def bound(n: int, d: int) -> int:
    """Rounds allowed for ``d`` bad among ``n``: bisection depth, confirmation, d spare."""
    return math.ceil(math.log2(n)) + 1 + d


@dataclass(frozen=True)
class Row:
    n: int
    d: int
    rounds_max: int
    rounds_mean: float
    tests_max: int
    tests_mean: float
    correct: bool

    @property
    def bound(self) -> int:
        return bound(self.n, self.d)


def one(n: int, bad: set[str]) -> tuple[int, int, bool]:
    """Isolate ``bad`` among ``n`` nodes; (rounds, tests, found exactly and confirmed)."""
    nodes = [f"n{i:04d}" for i in range(n)]

    def oracle(groups: Sequence[Group]) -> list[bool]:
        used: set[str] = set()
        for g in groups:  # a round's groups must be disjoint: they run at the same time
            assert not used & set(g), f"node used twice in one round: {g}"
            used |= set(g)
        return [not bad & set(g) for g in groups]

    result = isolate(nodes, oracle)
    ok = set(result.bad) == bad and set(result.confirmed) == bad and not result.suspects
    return result.rounds, result.tests, ok


def measure(trials: int, seed: int, sizes: Sequence[int] = SIZES,
            counts: Sequence[int] = BAD_COUNTS) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for n in sizes:
        for d in counts:
            runs = [one(n, {f"n{i:04d}" for i in rng.sample(range(n), d)})
                    for _ in range(trials)]
            rows.append(Row(n, d, max(r for r, _, _ in runs),
                            statistics.mean(r for r, _, _ in runs),
                            max(t for _, t, _ in runs), statistics.mean(t for _, t, _ in runs),
                            all(ok for _, _, ok in runs)))
    return rows


def table(rows: Sequence[Row]) -> str:
    lines = [f"{'nodes':>6} {'bad':>4} {'rounds max':>11} {'mean':>6} {'bound':>6} "
             f"{'tests max':>10} {'mean':>6} {'exact':>6}"]
    for r in rows:
        lines.append(f"{r.n:6d} {r.d:4d} {r.rounds_max:11d} {r.rounds_mean:6.1f} "
                     f"{r.bound:6d} {r.tests_max:10d} {r.tests_mean:6.1f} "
                     f"{'yes' if r.correct else 'NO':>6}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = measure(args.trials, args.seed)
    print(table(rows))
    return 0 if all(r.correct and r.rounds_max <= r.bound for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
