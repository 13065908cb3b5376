"""Every burn-in check in one table: what runs, how it is parsed and judged, at which levels.

A *node check* runs one probe on each node of the rack; a *pair check* runs a perftest
server on one node and its client on another, per rail. Each row names the probe kind that
parses its output (:data:`provision.burnin.probes.KINDS`), builds its argv, judges the parse,
lists the levels that run it, the verdict tests whose failure keeps a node out of the
multi-node collectives, and the tool versions it reports. The runner
(:mod:`provision.burnin.runner`) and the evaluation (:mod:`provision.burnin.evaluate`) only
walk these tables: adding a probe is one row here plus its parser.

Multi-node NCCL collectives (rack, leaf, all-to-all, cross-rack) are not rows: their order,
membership and isolation are the flow (:mod:`provision.burnin.flow`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.burnin import judge as j
from provision.burnin.probes import (
    KINDS,
    dcgmi_diag,
    infiniband,
    nvidia_smi_xml,
    nvlink,
    perftest,
    xid,
)
from provision.burnin.targets import NodeTarget, nccl_argv
from provision.burnin.thresholds import Thresholds

LEVELS = ("quick", "standard", "full", "soak")
"""Burn-in levels, shortest first; ``soak`` repeats ``standard`` for a duration."""

_NOT_QUICK = ("standard", "full", "soak")


@dataclass(frozen=True)
class ProbeArgs:
    """What a node check's argv may depend on besides the check itself."""

    gpus: int
    nccl_min_bytes: str
    nccl_max_bytes: str


NodeJudge = Callable[[NodeTarget, Any, Thresholds], list[j.Verdict]]


@dataclass(frozen=True)
class NodeCheck:
    name: str
    """The test name (unit ``node/<host>/<name>``, and the verdict test of a probe error)."""
    kind: str
    """Probe kind of its output (a key of ``KINDS``, or ``version``: no parser)."""
    argv: Callable[[ProbeArgs], list[str]]
    judge: NodeJudge | None
    """Verdicts from the parse; None: the check only reports versions."""
    levels: tuple[str, ...]
    blocks: tuple[str, ...] = ()
    """Verdict tests of this check whose failure keeps the node out of collectives (it
    cannot run them, or must not: a fatal Xid or uncorrectable ECC needs a reset first)."""
    versions: Callable[[Any], dict[str, str]] | None = None
    """Tool versions (name -> version) from the parse."""
    parse: Callable[[str], Any] | None = None
    """Parser of its stdout; None: the probe kind's."""

    def parser(self) -> Callable[[str], Any]:
        return self.parse if self.parse is not None else KINDS[self.kind]


def _ib_ports(t: NodeTarget, result: Any, th: Thresholds) -> list[j.Verdict]:
    return j.judge_ib_ports(t.name, result, th, t.hcas, {h: t.cable(h) for h in t.hcas})


def _nccl(test: str, share: float) -> NodeJudge:
    def judge(t: NodeTarget, result: Any, th: Thresholds) -> list[j.Verdict]:
        return j.judge_nccl(t.name, result, th, test=test,
                            floor=th.nccl_single_busbw_gbps * share)
    return judge


def _dcgm(level: int) -> NodeCheck:
    return NodeCheck(
        f"dcgm-r{level}", "dcgmi-diag", lambda a: dcgmi_diag.command(level),
        lambda t, result, th: j.judge_dcgm(t.name, result, th, level),
        ("full",) if level == 3 else ("standard", "soak"),
        versions=lambda diag: {"dcgm": diag.dcgm_version or "?"})


_PERFTEST_VERSION = re.compile(r"Version:\s*(\S+)")


def _perftest_version(text: str) -> str | None:
    m = _PERFTEST_VERSION.search(text)
    return m.group(1) if m else None


NODE_CHECKS: tuple[NodeCheck, ...] = (
    NodeCheck("nvidia-smi", "nvidia-smi-xml", lambda a: nvidia_smi_xml.command(),
              lambda t, result, th: j.judge_gpus(t.name, result, th), LEVELS,
              blocks=("nvidia-smi", "gpu-count", "ecc", "row-remap"),
              versions=lambda rep: {"driver": rep.driver_version or "?",
                                    "cuda": rep.cuda_version or "?"}),
    NodeCheck("nvlink", "nvlink", lambda a: nvlink.command(),
              lambda t, result, th: j.judge_nvlink(t.name, result, th), LEVELS),
    NodeCheck("xid", "xid", lambda a: xid.command(),
              lambda t, result, th: j.judge_xid(t.name, result, th), LEVELS, blocks=("xid",)),
    NodeCheck("ibstat", "ibstat", lambda a: infiniband.ibstat_command(), _ib_ports, LEVELS),
    _dcgm(2),
    _dcgm(3),
    NodeCheck("nccl-single", "nccl",
              lambda a: nccl_argv("all_reduce_perf", a.gpus, a.nccl_min_bytes,
                                  a.nccl_max_bytes),
              _nccl("nccl-single", 1.0), _NOT_QUICK,
              versions=lambda r: {"nccl-tests": r.version or "?", "nccl": r.nccl_version or "?"}),
    NodeCheck("perftest-version", "version", lambda a: ["ib_write_bw", "--version"], None,
              _NOT_QUICK, parse=_perftest_version,
              versions=lambda found: {"perftest": found} if found else {}),
    NodeCheck("a2a-single", "nccl",
              lambda a: nccl_argv("all_to_all_perf", a.gpus, a.nccl_min_bytes,
                                  a.nccl_max_bytes),
              _nccl("a2a-single", 0.75), ("full",)),
)
"""Node checks in the order they run on a node."""


@dataclass(frozen=True)
class PairCheck:
    name: str
    """The test name (unit ``pair/<rail>/<server>/<client>/<name>``) and its probe kind."""
    command: Callable[..., list[str]]
    """``command(rail, server address or None for the server, port=)`` -> argv."""
    port: int
    """The server's port on the first rail; rail ``i`` listens on ``port + i``."""
    judge: Callable[[str, str, str, Any, Thresholds], list[j.Verdict]]
    """``judge(client, server, rail, parse, thresholds)``."""
    levels: tuple[str, ...]
    first_round_only: bool = False
    """Run on the first round of pairs of each rail only (latency needs no more)."""

    @property
    def kind(self) -> str:
        return self.name


PAIR_CHECKS: tuple[PairCheck, ...] = (
    PairCheck("ib-write-bw", perftest.write_bw_command, 18515, j.judge_write_bw, _NOT_QUICK),
    PairCheck("ib-write-lat", perftest.write_lat_command, 18615, j.judge_write_lat, _NOT_QUICK,
              first_round_only=True),
)
"""Pair checks in the order they run on a pair."""

NODE_CHECK = {c.name: c for c in NODE_CHECKS}
PAIR_CHECK = {c.name: c for c in PAIR_CHECKS}

BLOCKING = frozenset(test for c in NODE_CHECKS for test in c.blocks)
"""Failed verdict tests that keep a node out of multi-node collectives."""


def node_checks(level: str) -> list[NodeCheck]:
    """The node checks of ``level``, in run order."""
    return [c for c in NODE_CHECKS if level in c.levels]


def pair_checks(level: str, first_round: bool) -> list[PairCheck]:
    """The pair checks of ``level`` for one round of pairs, in run order."""
    return [c for c in PAIR_CHECKS if level in c.levels and (first_round
                                                             or not c.first_round_only)]
