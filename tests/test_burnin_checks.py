"""The burn-in check table: every check's probe kind has a parser, the levels run the
checks they always ran, in the same order, and the blocking tests are the ones that keep a
node out of collectives."""

from __future__ import annotations

import pytest

from provision.burnin import checks as ck
from provision.burnin.probes import KINDS
from provision.burnin.targets import nccl_argv

ARGS = ck.ProbeArgs(gpus=8, nccl_min_bytes="256M", nccl_max_bytes="8G")


@pytest.mark.parametrize(("level", "tests"), [
    ("quick", ["nvidia-smi", "nvlink", "xid", "ibstat"]),
    ("standard", ["nvidia-smi", "nvlink", "xid", "ibstat", "dcgm-r2", "nccl-single",
                  "perftest-version"]),
    ("full", ["nvidia-smi", "nvlink", "xid", "ibstat", "dcgm-r3", "nccl-single",
              "perftest-version", "a2a-single"]),
    ("soak", ["nvidia-smi", "nvlink", "xid", "ibstat", "dcgm-r2", "nccl-single",
              "perftest-version"]),
])
def test_levels_run_their_node_checks_in_order(level: str, tests: list[str]) -> None:
    assert [c.name for c in ck.node_checks(level)] == tests


def test_pair_checks_per_round() -> None:
    assert [c.name for c in ck.pair_checks("standard", first_round=True)] == \
        ["ib-write-bw", "ib-write-lat"]
    assert [c.name for c in ck.pair_checks("full", first_round=False)] == ["ib-write-bw"]
    assert ck.pair_checks("quick", first_round=True) == []
    assert {c.port for c in ck.PAIR_CHECKS} == {18515, 18615}


def test_every_check_has_a_parser_and_a_level() -> None:
    names = [c.name for c in ck.NODE_CHECKS] + [c.name for c in ck.PAIR_CHECKS]
    assert len(names) == len(set(names)), "a check name twice"
    for c in ck.NODE_CHECKS:
        assert c.levels and set(c.levels) <= set(ck.LEVELS), c.name
        assert c.kind in KINDS or c.parse is not None, c.name
        assert c.judge is not None or c.versions is not None, f"{c.name} does nothing"
    for p in ck.PAIR_CHECKS:
        assert p.kind in KINDS and set(p.levels) <= set(ck.LEVELS), p.name


def test_argv_of_every_check() -> None:
    argv = {c.name: c.argv(ARGS) for c in ck.NODE_CHECKS}
    assert argv["nvidia-smi"] == ["nvidia-smi", "-q", "-x"]
    assert argv["dcgm-r2"] == ["dcgmi", "diag", "-r", "2", "-j"]
    assert argv["dcgm-r3"] == ["dcgmi", "diag", "-r", "3", "-j"]
    assert argv["perftest-version"] == ["ib_write_bw", "--version"]
    assert argv["nccl-single"] == nccl_argv("all_reduce_perf", 8, "256M", "8G")
    assert argv["a2a-single"] == nccl_argv("all_to_all_perf", 8, "256M", "8G")
    for name, words in argv.items():
        assert words and all(isinstance(w, str) and w for w in words), name


def test_blocking_tests() -> None:
    assert {"gpu-count", "xid", "ecc", "row-remap", "nvidia-smi"} == ck.BLOCKING


def test_perftest_version_is_read_from_its_banner() -> None:
    check = ck.NODE_CHECK["perftest-version"]
    assert check.versions is not None
    assert check.versions(check.parser()("Version: 6.22\n")) == {"perftest": "6.22"}
    assert check.versions(check.parser()("ib_write_bw: command not found\n")) == {}

