"""Simulated nccl-tests (``all_reduce_perf``, ``all_to_all_perf`` also installed under
nccl-tests' own name ``alltoall_perf``), single- and multi-node.

The table has nccl-tests' layout (size, count, type, redop, root, then time/algbw/busbw/#wrong
out-of-place and in-place) and footer (``# Out of bounds values``, ``# Avg bus bandwidth``).
Bandwidth model, per collective:

* a node's own ceiling is its personality's ``nccl_busbw_gbps`` (all_reduce; all_to_all gets
  0.78 of it), or a PCIe-bound 20 GB/s when any of its NVLinks is down;
* across nodes each node's network ceiling is (active HCAs) x (slowest active HCA rate) / 8
  x 0.92 GB/s, because NCCL splits data evenly across rails and waits for the slowest;
* the collective runs at the minimum ceiling of all participants, times the smallest
  ``slow-nccl`` factor among them, approached as 0.25 + 0.75 x size / (size + half-size), plus latency.

A node with too few visible GPUs (``gpu-missing``) makes the run fail like a CUDA
``invalid device ordinal``; a node with no active HCA fails a multi-node run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from provision.lab.hwsim.nvsmi_data import gpu_views
from provision.lab.hwsim.personality import LABEL, rng
from provision.lab.hwsim.state import HostState, SimExit

SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
ARG_OPTS = {
    "-t": "nthreads",
    "-g": "ngpus",
    "-b": "minbytes",
    "-e": "maxbytes",
    "-i": "stepbytes",
    "-f": "stepfactor",
    "-n": "iters",
    "-m": "agg_iters",
    "-w": "warmup_iters",
    "-c": "check",
    "-o": "op",
    "-d": "datatype",
    "-r": "root",
    "-z": "blocking",
    "-y": "stream_null",
    "-T": "timeout",
    "-G": "cudagraph",
    "-C": "report_cputime",
    "-a": "average",
    "-p": "parallel_init",
    "-N": "run_cycles",
    "-R": "local_register",
}
LONG_OPTS = {f"--{v}": v for v in ARG_OPTS.values()}
USAGE = (
    f"USAGE: all_reduce_perf [-t nthreads] [-g ngpus] [-b minbytes] [-e maxbytes] "
    f"[-i stepbytes | -f stepfactor] [-n iters] [-w warmup] [-c check] [-o op] "
    f"[-d datatype] [-r root] [-G cudagraph]\n({LABEL})"
)
TESTS_VERSION = "2.17.6"
NCCL_CODE = 22703
WORD = {
    "int8": 1,
    "uint8": 1,
    "char": 1,
    "half": 2,
    "bfloat16": 2,
    "float": 4,
    "int32": 4,
    "int": 4,
    "uint32": 4,
    "double": 8,
    "int64": 8,
    "uint64": 8,
}


@dataclass(frozen=True)
class Options:
    nthreads: int = 1
    ngpus: int = 1
    minbytes: int = 32 << 20
    maxbytes: int = 32 << 20
    stepbytes: int = 1 << 20
    stepfactor: int = 1
    iters: int = 20
    warmup: int = 5
    check: int = 1
    op: str = "sum"
    datatype: str = "float"
    root: int = 0
    graph: int = 0


def _bytes(text: str) -> int:
    unit = SUFFIX.get(text[-1:].upper(), 0)
    try:
        return int(text[:-1]) * unit if unit else int(text)
    except ValueError:
        raise SimExit(1, f"invalid size {text!r}\n{USAGE}") from None


def parse(argv: Sequence[str]) -> Options:
    """nccl-tests' getopt options; unknown ones print usage and fail."""
    values: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        key = ARG_OPTS.get(a[:2]) if a.startswith("-") and not a.startswith("--") else None
        if a.startswith("--"):
            name, _, inline = a.partition("=")
            key = LONG_OPTS.get(name)
            if key and inline:
                values[key] = inline
                i += 1
                continue
        elif key and len(a) > 2:
            values[key] = a[2:]
            i += 1
            continue
        if a in ("-h", "--help"):
            print(USAGE)
            raise SimExit(0)
        if key is None or i + 1 >= len(args):
            raise SimExit(1, f"invalid option {a!r}\n{USAGE}")
        values[key] = args[i + 1]
        i += 2
    try:
        factor = int(values.get("stepfactor", "0"))
        opts = Options(
            nthreads=int(values.get("nthreads", "1")),
            ngpus=int(values.get("ngpus", "1")),
            minbytes=_bytes(values.get("minbytes", "32M")),
            maxbytes=_bytes(values.get("maxbytes", "32M")),
            stepbytes=_bytes(values.get("stepbytes", "1M")),
            stepfactor=factor,
            iters=int(values.get("iters", "20")),
            warmup=int(values.get("warmup_iters", "5")),
            check=int(values.get("check", "1")),
            op=values.get("op", "sum"),
            datatype=values.get("datatype", "float"),
            root=int(values.get("root", "0")),
            graph=int(values.get("cudagraph", "0")),
        )
    except ValueError as exc:
        raise SimExit(1, f"invalid option value: {exc}\n{USAGE}") from None
    if opts.ngpus < 1 or opts.nthreads < 1 or opts.minbytes > opts.maxbytes:
        raise SimExit(1, f"invalid options\n{USAGE}")
    return opts


def sizes(opts: Options, align: int) -> list[int]:
    """Message sizes from minbytes to maxbytes (by factor, else by stepbytes), aligned down."""
    out: list[int] = []
    size = opts.minbytes
    while size <= opts.maxbytes and len(out) < 64:
        out.append(size // align * align)
        if opts.stepfactor > 1:
            size *= opts.stepfactor
        elif opts.stepbytes > 0:
            size += opts.stepbytes
        else:
            break
    return out


@dataclass(frozen=True)
class Rank:
    host: str
    local: int
    bus_short: str
    name: str


def node_ceiling(state: HostState, coll: str) -> float:
    """This node's own busbw ceiling in GB/s (NVLink fabric, or PCIe when NVLink is down)."""
    base = 20.0 if state.any_nvlink_down() else state.facts.nccl_busbw_gbps
    return base * (0.78 if coll == "all_to_all" else 1.0)


def network_ceiling(state: HostState) -> float:
    """This node's inter-node busbw ceiling in GB/s; 0 when no HCA is up."""
    active = [i for i in range(state.facts.hca_count) if state.hca_state(i) == "Active"]
    if not active:
        return 0.0
    return len(active) * min(state.hca_rate(i) for i in active) / 8.0 * 0.92


def plan_ranks(layout: list[tuple[HostState, int]], ngpus: int) -> list[Rank]:
    """Ranks for (host, processes on it) with ``ngpus`` GPUs per process; SimExit on a node
    that has fewer GPUs than it is asked to drive."""
    ranks: list[Rank] = []
    for state, procs in layout:
        gpus = gpu_views(state)
        need = procs * ngpus
        if need > len(gpus):
            pid = rng(state.host, "pid").randint(2000, 99999)
            raise SimExit(
                1,
                f"{state.host}: Test CUDA failure common.cu:1012 "
                f"'invalid device ordinal'\n .. {state.host} pid {pid}: "
                "Test failure common.cu:891",
            )
        ranks.extend(Rank(state.host, i, gpus[i].bus_short, gpus[i].name) for i in range(need))
    return ranks


def peak_busbw(layout: list[tuple[HostState, int]], coll: str) -> float:
    states = [s for s, _ in layout]
    ceilings = [node_ceiling(s, coll) for s in states]
    if len({s.host for s in states}) > 1:
        for s in states:
            net = network_ceiling(s)
            if net <= 0:
                raise SimExit(
                    1,
                    f"{s.host}: NCCL WARN NET/IB : No device found.\n"
                    f"{s.host}: Test NCCL failure common.cu:1005 "
                    "'unhandled system error'",
                )
            ceilings.append(net * (0.85 if coll == "all_to_all" else 1.0))
    return min(ceilings) * min(s.nccl_factor() for s in states)


def render(coll: str, opts: Options, layout: list[tuple[HostState, int]], program: str = "") -> str:
    """The whole nccl-tests report (2.17 layout) of ``program`` running collective ``coll``
    over ``layout``."""
    program = program or f"{coll}_perf"
    head = [
        f"# nccl-tests version {TESTS_VERSION} nccl-headers={NCCL_CODE} nccl-library={NCCL_CODE}",
        f"# Collective test starting: {program}",
        f"# nThread {opts.nthreads} nGpus {opts.ngpus} minBytes {opts.minbytes} "
        f"maxBytes {opts.maxbytes} step: "
        + (f"{opts.stepfactor}(factor)" if opts.stepfactor > 1 else f"{opts.stepbytes}(bytes)")
        + f" warmup iters: {opts.warmup} iters: {opts.iters} agg iters: 1 "
        f"validation: {1 if opts.check else 0} graph: {opts.graph}",
        f"# {LABEL}",
        "#",
        "# Using devices",
    ]
    try:
        ranks = plan_ranks(layout, opts.ngpus)
        peak = peak_busbw(layout, coll)
    except SimExit:
        sys.stdout.write("\n".join(head) + "\n")
        sys.stdout.flush()
        raise
    n = len(ranks)
    multi = len({r.host for r in ranks}) > 1
    word = WORD.get(opts.datatype, 4)
    bus_factor = 2.0 * (n - 1) / n if coll == "all_reduce" else (n - 1) / n  # 0 for 1 rank
    latency = (40.0 + 8.0 * len({r.host for r in ranks})) if multi else 13.0
    half = (48 << 20) if multi else (20 << 20)
    seed = ",".join(sorted({r.host for r in ranks}))
    redop = opts.op if coll == "all_reduce" else "none"
    root = -1
    lines = list(head)
    for i, r in enumerate(ranks):
        pid = rng(r.host, "pid", r.local // opts.ngpus).randint(2000, 99999)
        lines.append(
            f"#  Rank {i:2d} Group  0 Pid {pid:6d} on {r.host:>10s} device "
            f"{r.local:2d} [{r.bus_short}] {r.name}"
        )
    lines += [
        "#",
        f"# {'':10s}  {'':12s}  {'':8s}  {'':6s}  {'':6s}           out-of-place"
        "                       in-place          ",
        f"# {'size':>10s}  {'count':>12s}  {'type':>8s}  {'redop':>6s}  {'root':>6s}  "
        f"{'time':>7s}  {'algbw':>6s}  {'busbw':>6s} {'#wrong':>6s}  {'time':>7s}  "
        f"{'algbw':>6s}  {'busbw':>6s} {'#wrong':>6s}",
        f"# {'(B)':>10s}  {'(elements)':>12s}  {'':>8s}  {'':>6s}  {'':>6s}  "
        f"{'(us)':>7s}  {'(GB/s)':>6s}  {'(GB/s)':>6s}  {'':>5s}  {'(us)':>7s}  "
        f"{'(GB/s)':>6s}  {'(GB/s)':>6s}  {'':>5s}",
    ]
    align = word * (n if coll == "all_to_all" else 1)
    busbws: list[float] = []
    for size in sizes(opts, align):
        count = size // word // (n if coll == "all_to_all" else 1)
        row = f"{size:12d}  {count:12d}  {opts.datatype:>8s}  {redop:>6s}  {root:6d}"
        for place in ("out", "in"):
            draw = rng(seed, coll, size, place, n)
            eff = peak * draw.uniform(0.985, 1.005) * (0.25 + 0.75 * size / (size + half))
            algbw_target = eff / bus_factor if bus_factor else eff
            t_us = latency * draw.uniform(0.97, 1.05) + (
                size / (algbw_target * 1e3) if algbw_target else 0.0
            )
            algbw = size / t_us / 1e3
            busbw = algbw * bus_factor
            busbws.append(busbw)
            t_str = (
                f"{t_us:7.0f}"
                if t_us >= 10000
                else (f"{t_us:7.1f}" if t_us >= 100 else f"{t_us:7.2f}")
            )
            wrong = "0" if opts.check else "N/A"
            row += f"  {t_str}  {algbw:6.2f}  {busbw:6.2f}  {wrong:>5s}"
        lines.append(row)
    avg = sum(busbws) / len(busbws) if busbws else 0.0
    lines += ["# Out of bounds values : 0 OK", f"# Avg bus bandwidth    : {avg:g} ", "#"]
    return "\n".join(lines) + "\n"


PROGRAMS = {
    "all_reduce_perf": "all_reduce",
    "all_to_all_perf": "all_to_all",
    "alltoall_perf": "all_to_all",
}
"""Simulated nccl-tests binaries (nccl-tests itself names its all-to-all ``alltoall_perf``)."""


def run_single(program: str, argv: Sequence[str], state: HostState) -> int:
    """A nccl-tests binary run directly on one node (threads x GPUs)."""
    opts = parse(argv)
    sys.stdout.write(render(PROGRAMS[program], opts, [(state, opts.nthreads)], program))
    return 0
