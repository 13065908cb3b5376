"""Burn-in scheduling (round-robin pairs, leaf groups, blame, bounded pool) and isolation."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.burnin.isolate import Group, isolate
from provision.burnin.schedule import (
    PairOutcome,
    attribute_pairs,
    leaf_groups,
    round_robin,
    run_bounded,
)

ROOT = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("isolation_sim",
                                                  ROOT / "bench" / "isolation_sim.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["isolation_sim"] = module
    spec.loader.exec_module(module)
    return module


@given(st.integers(min_value=0, max_value=64))
@settings(max_examples=40, deadline=None)
def test_round_robin_covers_every_pair_once_in_disjoint_rounds(n: int) -> None:
    nodes = [f"n{i}" for i in range(n)]
    rounds = round_robin(nodes)
    if n < 2:
        assert rounds == []
        return
    assert len(rounds) == (n - 1 if n % 2 == 0 else n)
    seen: list[frozenset[str]] = []
    for pairs in rounds:
        members = [x for p in pairs for x in p]
        assert len(members) == len(set(members)), "a node twice in one round"
        assert len(pairs) == n // 2
        seen += [frozenset(p) for p in pairs]
    assert len(seen) == len(set(seen)) == n * (n - 1) // 2


def test_odd_count_gives_each_node_one_bye() -> None:
    nodes = ["a", "b", "c", "d", "e"]
    byes = [next(x for x in nodes if all(x not in p for p in r)) for r in round_robin(nodes)]
    assert sorted(byes) == nodes


def test_leaf_groups() -> None:
    assert leaf_groups(["a", "b", "c", "d"], {"a": "L2", "b": "L1", "c": "L2"}) == \
        {"L1": ["b"], "L2": ["a", "c"]}


def test_blame_goes_to_the_node_that_fails_with_everyone() -> None:
    outcomes = [PairOutcome("mlx5_2", a, b, "n2" not in (a, b))
                for a, b in itertools.combinations(["n1", "n2", "n3", "n4"], 2)]
    blamed = attribute_pairs(outcomes)
    assert [(b.node, b.rail, b.certain) for b in blamed] == [("n2", "mlx5_2", True)]
    assert blamed[0].failed_with == ("n1", "n3", "n4")
    two = attribute_pairs([PairOutcome("mlx5_0", "a", "b", False)])
    assert [(b.node, b.certain) for b in two] == [("a", False), ("b", False)]


def test_run_bounded_limits_concurrency_and_yields_every_result() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def task(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return i * i

    got = dict(run_bounded({i: (lambda i=i: task(i)) for i in range(20)}, workers=3))
    assert got == {i: i * i for i in range(20)} and peak <= 3
    with pytest.raises(ZeroDivisionError):
        list(run_bounded({"x": lambda: 1 // 0}, workers=2))


def oracle(bad: set[str], log: list[Sequence[Group]]) -> object:
    def test(groups: Sequence[Group]) -> list[bool]:
        used = [n for g in groups for n in g]
        assert len(used) == len(set(used)), "a node in two tests of one round"
        assert all(len(g) >= 2 for g in groups)
        log.append(list(groups))
        return [not bad & set(g) for g in groups]
    return test


@pytest.mark.parametrize("n", [8, 16, 64, 256, 1024])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_isolation_finds_exactly_the_bad_nodes_in_log_rounds(n: int, d: int) -> None:
    bench = _bench()
    for trial in range(5):
        nodes = [f"n{i:04d}" for i in range(n)]
        bad = set(nodes[(trial * 7 + k * (n // d)) % n] for k in range(d))
        log: list[Sequence[Group]] = []
        result = isolate(nodes, oracle(bad, log))  # type: ignore[arg-type]
        assert set(result.bad) == set(result.confirmed) == bad
        assert not result.suspects and len(log) == result.rounds
        assert result.rounds <= bench.bound(n, d)
        assert result.tests <= 2 * d * (n.bit_length() + 1)


def test_bench_table_is_exact_and_within_bound() -> None:
    rows = _bench().measure(trials=4, seed=3, sizes=(8, 32, 128, 512), counts=(1, 2, 3))
    assert all(r.correct and r.rounds_max <= r.bound for r in rows)
    assert "rounds max" in _bench().table(rows)


def test_isolation_edges() -> None:
    log: list[Sequence[Group]] = []
    flaky = isolate(["a", "b", "c", "d"], oracle(set(), log))  # type: ignore[arg-type]
    assert flaky.bad == () and "did not reproduce" in flaky.notes[0]
    stuck = isolate(["a", "b"], oracle({"a"}, []))  # type: ignore[arg-type]
    assert stuck.bad == () and stuck.suspects == ("a", "b") and stuck.rounds == 0
    helped = isolate(["a", "b"], oracle({"a"}, []), known_good=["z"])  # type: ignore[arg-type]
    assert helped.bad == ("a",) and helped.confirmed == ("a",) and helped.good == ("b",)
    three = isolate(["a", "b", "c"], oracle({"c"}, []))  # type: ignore[arg-type]
    assert three.bad == ("c",) and three.confirmed == ("c",)
