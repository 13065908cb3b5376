"""Probe nccl-tests (``all_reduce_perf``, ``all_to_all_perf``, ...): header, ranks, result rows.

Layouts of all nccl-tests versions parse: with or without the ``root`` column, the
``#wrong`` check column (2.x, a count that large runs print in exponent form: ``1.67772e+07``)
or the older ``error`` column, ``N/A`` when validation is off, and an empty ``redop`` for
collectives without one. NCCL ``INFO``/``WARN`` lines and MPI banners between the lines are
ignored; ``srun --label`` (``0: ``) and OpenMPI ``--tag-output`` (``[1,0]<stdout>:``)
prefixes are stripped. The NCCL library version comes from ``NCCL INFO NCCL version
2.x.y+cudaX.Y`` (or nccl-tests' ``nccl-library=21805``), nccl-tests' own from its header. An output without the
closing ``# Avg bus bandwidth`` line (the run died or the log was cut) is a ParseError.

Judge bandwidth with :func:`large_message_busbw`, not with the average line: the average
includes the tiny, latency-bound sizes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.burnin.probes._common import check_text, float_or_none, int_or_none, snippet
from provision.errors import ParseError

KIND = "nccl"
DEFAULT_LARGE_BYTES = 1 << 30

_PREFIX = re.compile(r"^\s*(?:\d+: |\[\d+,\d+\]<std(?:out|err)>:)")
_PARAMS = re.compile(r"(?P<key>[A-Za-z_]+(?: [A-Za-z_]+)?):? (?P<value>[^\s:]+)(?=\s|$)")
_RANK = re.compile(
    r"^#\s+Rank\s+(?P<rank>\d+)(?:\s+Group\s+(?P<group>\d+))?\s+Pid\s+(?P<pid>\d+)\s+on\s+"
    r"(?P<host>\S+)\s+device\s+(?P<device>\d+)\s+\[(?P<bus>[^\]]+)\]\s+(?P<gpu>.+?)\s*$"
)
_ROW = re.compile(r"^\s*\d+\s+\d+\s+\S+")
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*(?P<value>\S+)")
_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(?P<count>\d+)\s+(?P<verdict>OK|FAILED)")
_TEST = re.compile(r"^#\s*Collective test starting:\s*(?P<name>\S+)")
_VERSION = re.compile(r"^#\s*nccl-tests version (?P<version>\S+)")
_LIBRARY = re.compile(r"\bNCCL version (?P<version>\d+\.\d+\.\d+\S*)")
_LIBRARY_CODE = re.compile(r"\bnccl-library=(?P<code>\d{5,})\b")
_BINARY = re.compile(r"\b(?P<name>[a-z_]+_perf)\b")


@dataclass(frozen=True)
class NcclRank:
    """One ``#  Rank`` line: where a rank ran and on which GPU."""

    rank: int
    group: int | None
    pid: int
    host: str
    device: int
    bus_id: str
    gpu: str


@dataclass(frozen=True)
class NcclMeasurement:
    """Time and bandwidths of one placement; ``wrong`` (2.x) or ``error`` (1.x) checks."""

    time_us: float
    algbw_gbps: float
    busbw_gbps: float
    wrong: int | None
    error: float | None


@dataclass(frozen=True)
class NcclRow:
    """One message size, out-of-place and (when printed) in-place."""

    size_bytes: int
    count: int
    type: str
    redop: str | None
    root: int | None
    out_of_place: NcclMeasurement
    in_place: NcclMeasurement | None

    @property
    def best_busbw_gbps(self) -> float:
        placements = [self.out_of_place] + ([self.in_place] if self.in_place else [])
        return max(m.busbw_gbps for m in placements)


@dataclass(frozen=True)
class NcclResult:
    """A whole nccl-tests run."""

    test: str | None
    version: str | None
    nccl_version: str | None
    threads: int | None
    gpus_per_thread: int | None
    min_bytes: int | None
    max_bytes: int | None
    params: dict[str, str]
    ranks: tuple[NcclRank, ...]
    check_column: str
    rows: tuple[NcclRow, ...]
    out_of_bounds: int | None
    out_of_bounds_ok: bool | None
    avg_busbw_gbps: float

    @property
    def wrong_elements(self) -> int:
        """Corrupted elements counted by the ``#wrong`` checks of every row and placement."""
        return sum(
            m.wrong or 0
            for row in self.rows
            for m in (row.out_of_place, row.in_place)
            if m is not None
        )

    @property
    def wrong_rows(self) -> int:
        """Rows whose data check found corrupted elements."""
        return sum(
            1
            for row in self.rows
            for m in (row.out_of_place, row.in_place)
            if m is not None and ((m.wrong or 0) > 0 or (m.error or 0.0) > 0.0)
        )


def command(
    test: str = "all_reduce_perf",
    *,
    min_bytes: str = "8",
    max_bytes: str = "16G",
    factor: int = 2,
    gpus_per_process: int = 1,
    iters: int = 20,
    warmup: int = 5,
    check: bool = True,
) -> list[str]:
    """argv of one nccl-tests binary (the MPI/srun launcher is the executor's business)."""
    if not re.fullmatch(r"[a-z_]+_perf", test):
        raise ValueError(f"nccl-tests binary must look like 'all_reduce_perf', not {test!r}")
    return [
        test,
        "-b",
        min_bytes,
        "-e",
        max_bytes,
        "-f",
        str(factor),
        "-g",
        str(gpus_per_process),
        "-n",
        str(iters),
        "-w",
        str(warmup),
        "-c",
        "1" if check else "0",
    ]


def large_message_busbw(result: NcclResult, min_bytes: int = DEFAULT_LARGE_BYTES) -> float | None:
    """The worst bus bandwidth (GB/s) among message sizes >= ``min_bytes``.

    Each row counts with the better of its out-of-place and in-place busbw; the minimum
    over those rows is what every large transfer achieved at least. None when the run had no
    row that large (a judge should treat that as "not measured", never as a pass).
    """
    large = [row.best_busbw_gbps for row in result.rows if row.size_bytes >= min_bytes]
    return min(large) if large else None


def _wrong(value: str) -> int | None:
    """A ``#wrong`` count: ``17``, ``N/A``, or exponent form ``1.67772e+07`` (rounded)."""
    if re.fullmatch(r"\d+(?:\.\d+)?[eE][+-]?\d+", value.strip()):
        return round(float(value))
    return int_or_none(KIND, "#wrong", value)


def _library_version(code: str) -> str:
    """NCCL's version code (``21805``: major*10000 + minor*100 + patch) as ``2.18.5``."""
    number = int(code)
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


def _measurement(tokens: list[str], check: str, where: str) -> NcclMeasurement:
    time, algbw, busbw, checked = tokens
    try:
        wrong = None if check != "#wrong" else _wrong(checked)
        error = None if check != "error" else float_or_none(KIND, "error", checked)
        return NcclMeasurement(float(time), float(algbw), float(busbw), wrong, error)
    except (ValueError, ParseError) as exc:
        raise ParseError(f"{KIND}: {where}: malformed measurement {' '.join(tokens)!r}") from exc


def _row(line: str, number: int, header: list[str]) -> NcclRow:
    where = f"line {number}"
    tokens = line.split()
    placements = header.count("time")
    check = "#wrong" if "#wrong" in header else "error"
    lead, measured = tokens[: -4 * placements], tokens[-4 * placements :]
    extra = [name for name in ("redop", "root") if name in header]
    if not 3 <= len(lead) <= 3 + len(extra) or len(tokens) < 3 + 4 * placements:
        raise ParseError(f"{KIND}: {where}: garbled result row {snippet(line, 100)!r}")
    named = dict(
        zip(extra if len(lead) - 3 == len(extra) else extra[: len(lead) - 3], lead[3:], strict=True)
    )
    try:
        size, count = int(lead[0]), int(lead[1])
        root = int(named["root"]) if "root" in named else None
    except ValueError as exc:
        raise ParseError(f"{KIND}: {where}: garbled result row {snippet(line, 100)!r}") from exc
    oop = _measurement(measured[:4], check, where)
    ip = _measurement(measured[4:8], check, where) if placements > 1 else None
    return NcclRow(size, count, lead[2], named.get("redop"), root, oop, ip)


def parse(text: str) -> NcclResult:
    """Parse one nccl-tests run; ParseError when it is not one or it was cut short."""
    check_text(KIND, text)
    params: dict[str, str] = {}
    ranks: list[NcclRank] = []
    rows: list[NcclRow] = []
    header: list[str] = []
    test = version = library = None
    avg: float | None = None
    oob: re.Match[str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _PREFIX.sub("", raw, count=1).rstrip()
        stripped = line.strip()
        if stripped.startswith("# nThread"):
            if params:
                raise ParseError(
                    f"{KIND}: line {number}: a second nccl-tests run starts here; "
                    "parse one run at a time"
                )
            params = {
                m.group("key"): m.group("value") for m in _PARAMS.finditer(stripped[1:].strip())
            }
        elif (match := _RANK.match(stripped)) is not None:
            ranks.append(
                NcclRank(
                    int(match["rank"]),
                    int_or_none(KIND, "Group", match["group"]),
                    int(match["pid"]),
                    match["host"],
                    int(match["device"]),
                    match["bus"],
                    match["gpu"],
                )
            )
        elif stripped.startswith("#") and " size " in f" {stripped} " and "count" in stripped:
            header = stripped.lstrip("#").split()
        elif (match := _TEST.match(stripped)) is not None:
            test = match["name"]
        elif (match := _VERSION.match(stripped)) is not None:
            version = match["version"]
            if library is None and (code := _LIBRARY_CODE.search(stripped)) is not None:
                library = _library_version(code["code"])
        elif (match := _LIBRARY.search(stripped)) is not None:
            library = match["version"]
        elif (match := _AVG.match(stripped)) is not None:
            avg = float_or_none(KIND, "Avg bus bandwidth", match["value"])
        elif (match := _OOB.match(stripped)) is not None:
            oob = match
        elif header and _ROW.match(line):
            rows.append(_row(line, number, header))
    if not params:
        raise ParseError(
            f"{KIND}: no '# nThread ... nGpus ...' header, output starts with {snippet(text)!r}"
        )
    if not header or not rows:
        raise ParseError(f"{KIND}: no result rows (the run failed before measuring)")
    if avg is None:
        raise ParseError(
            f"{KIND}: truncated: no '# Avg bus bandwidth' line after {rows[-1].size_bytes} bytes"
        )
    if test is None and (binary := _BINARY.search(text)) is not None:
        test = binary["name"]
    return NcclResult(
        test=test,
        version=version,
        nccl_version=library,
        threads=int_or_none(KIND, "nThread", params.get("nThread")),
        gpus_per_thread=int_or_none(KIND, "nGpus", params.get("nGpus")),
        min_bytes=int_or_none(KIND, "minBytes", params.get("minBytes")),
        max_bytes=int_or_none(KIND, "maxBytes", params.get("maxBytes")),
        params=params,
        ranks=tuple(ranks),
        check_column="#wrong" if "#wrong" in header else "error",
        rows=tuple(rows),
        out_of_bounds=int(oob["count"]) if oob else None,
        out_of_bounds_ok=(oob["verdict"] == "OK") if oob else None,
        avg_busbw_gbps=avg,
    )
