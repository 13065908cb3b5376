"""Pure scheduling: which tests run together, in which rounds, and who is to blame.

- :func:`round_robin` pairs every node with every other exactly once in ``n - 1`` rounds of
  ``n / 2`` disjoint pairs (the circle method; an odd count gets a bye each round), so a
  round's pairwise ``ib_write_bw`` tests never share a port.
- :func:`leaf_groups` groups a rack's nodes by the leaf switch their first rail lands on
  (the NCCL runs after the rack-wide one).
- :func:`attribute_pairs` turns pairwise outcomes into per-(node, rail) blame: a node is at
  fault on a rail when most of its pairs there failed.
- :func:`run_bounded` runs callables on a bounded thread pool, results in completion order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K")


def round_robin(nodes: Sequence[str]) -> list[list[tuple[str, str]]]:
    """Rounds of disjoint pairs covering every unordered pair once (circle method).

    ``n`` even: ``n - 1`` rounds of ``n / 2`` pairs; ``n`` odd: ``n`` rounds of ``(n - 1) / 2``
    pairs (one node sits out each round). Fewer than two nodes: no rounds.
    """
    items: list[str | None] = list(nodes)
    if len(items) < 2:
        return []
    if len(items) % 2:
        items.append(None)  # the bye
    n = len(items)
    fixed, rest = items[0], items[1:]
    rounds: list[list[tuple[str, str]]] = []
    for r in range(n - 1):
        rot = rest[r:] + rest[:r]
        ring = [fixed, *rot]
        pairs = []
        for i in range(n // 2):
            a, b = ring[i], ring[n - 1 - i]
            if a is not None and b is not None:
                pairs.append((a, b))
        rounds.append(pairs)
    return rounds


def leaf_groups(nodes: Sequence[str], leaf_of: Mapping[str, str]) -> dict[str, list[str]]:
    """Nodes grouped by leaf switch (``leaf_of[node]``), leaves and members in order."""
    groups: dict[str, list[str]] = {}
    for node in nodes:
        leaf = leaf_of.get(node)
        if leaf is not None:
            groups.setdefault(leaf, []).append(node)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class PairOutcome:
    """One pairwise test on one rail: server ``a``, client ``b``."""

    rail: str
    a: str
    b: str
    ok: bool


@dataclass(frozen=True)
class Blame:
    """Who a failed pairwise test is attributed to, and why."""

    node: str
    rail: str
    failed_with: tuple[str, ...]
    passed_with: tuple[str, ...]
    certain: bool


def attribute_pairs(outcomes: Iterable[PairOutcome]) -> list[Blame]:
    """Per (node, rail): blamed when more of its pairs failed than passed (``certain`` when
    one of the peers it failed with is not blamed itself); a failed pair neither of whose
    ends is blamed blames both, uncertain (e.g. only two nodes)."""
    failed: dict[tuple[str, str], list[str]] = {}
    passed: dict[tuple[str, str], list[str]] = {}
    bad_pairs: list[PairOutcome] = []
    for o in outcomes:
        for me, other in ((o.a, o.b), (o.b, o.a)):
            (passed if o.ok else failed).setdefault((me, o.rail), []).append(other)
        if not o.ok:
            bad_pairs.append(o)

    def majority(key: tuple[str, str]) -> bool:
        return len(failed.get(key, [])) > len(passed.get(key, []))

    def certain(key: tuple[str, str]) -> bool:
        """Blamed with confidence: it failed with at least one peer that is not blamed."""
        return any(not majority((peer, key[1])) for peer in failed.get(key, []))

    blamed: dict[tuple[str, str], bool] = {}
    for o in bad_pairs:
        ends = [(o.a, o.rail), (o.b, o.rail)]
        hits = [k for k in ends if majority(k)]
        for k in hits:
            blamed[k] = certain(k)
        if not hits:
            for k in ends:
                blamed.setdefault(k, False)
    return [Blame(node, rail, tuple(sorted(failed.get((node, rail), []))),
                  tuple(sorted(passed.get((node, rail), []))), certain)
            for (node, rail), certain in sorted(blamed.items())]


def run_bounded(tasks: Mapping[K, Callable[[], T]], workers: int) -> Iterator[tuple[K, T]]:
    """Run ``tasks`` on at most ``workers`` threads; yield ``(key, result)`` as each finishes.

    A task's exception propagates to the caller (after the pool stops taking new tasks); the
    caller's thread is the only one that sees results, so it may write to a store.
    """
    if not tasks:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks)))) as pool:
        futures: dict[Future[T], K] = {pool.submit(fn): key for key, fn in tasks.items()}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: str(futures[f])):
                    yield futures[fut], fut.result()
        finally:
            for fut in pending:
                fut.cancel()
