"""Probes ``ib_write_bw`` and ``ib_write_lat`` (perftest): header facts and result rows.

Bandwidth is reported in the unit of the table header and also normalised to Gb/s
(10^9 bit/s). perftest's ``MB/sec`` is binary: it divides bytes by 0x100000 (2^20), so
1 MB/sec = 2^20 * 8 / 10^9 Gb/s; ``--report_gbits`` prints ``Gb/sec`` (10^9 bit/s).
In duration mode (``-D``) perftest prints ``BW peak`` as 0.00; only the average is real.

Logs that hold both the server and the client side print the result row twice; identical
rows are kept once and counted in ``duplicate_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from provision.burnin.probes._common import check_text, int_or_none
from provision.errors import ParseError

_BW_FACTORS = {"MB/sec": 2**20 * 8 / 1e9, "MiB/sec": 2**20 * 8 / 1e9, "Gb/sec": 1.0}
_TITLE = re.compile(r"^\s*(?P<title>\S.* (?P<what>BW|Latency) Test)\s*$")
_SEPARATOR = re.compile(r"^\s*-{20,}\s*$")
_PAIR = re.compile(r"(?P<key>[A-Za-z][A-Za-z0-9_*. -]*?)\s*: (?P<value>\S+)")
_COLUMN = re.compile(
    r"#\w+|BW \w+\[[^\]]+\]|MsgRate\[[^\]]+\]|t_\w+\[[^\]]+\]|[\d.]+% percentile\[[^\]]+\]"
    r"|tps average"
)
_ROW = re.compile(r"^\s*\d+\s+\d+(?:\s+-?\d+(?:\.\d+)?)+\s*$")
_FAILURE = re.compile(r"couldn't|unable|failed|error|conflicting", re.IGNORECASE)
_LAT_COLUMNS = {
    "t_min": "t_min_us",
    "t_max": "t_max_us",
    "t_typical": "t_typical_us",
    "t_avg": "t_avg_us",
    "t_stdev": "t_stdev_us",
    "99%": "p99_us",
    "99.9%": "p999_us",
}


@dataclass(frozen=True)
class PerftestHeader:
    """What perftest printed about the run before the results."""

    test: str
    device: str | None
    link_type: str | None
    transport: str | None
    connection: str | None
    qps: int | None
    mtu_bytes: int | None
    settings: dict[str, str]


@dataclass(frozen=True)
class BwRow:
    """One message size: peak and average bandwidth, raw and in Gb/s."""

    bytes: int
    iterations: int
    bw_peak: float
    bw_average: float
    unit: str
    bw_peak_gbps: float
    bw_average_gbps: float
    msg_rate_mpps: float | None


@dataclass(frozen=True)
class WriteBw:
    """An ``ib_write_bw`` run."""

    header: PerftestHeader
    unit: str
    rows: tuple[BwRow, ...]
    duplicate_rows: int


@dataclass(frozen=True)
class LatRow:
    """One message size of a latency run, in microseconds (None where not printed)."""

    bytes: int
    iterations: int
    t_min_us: float | None
    t_max_us: float | None
    t_typical_us: float | None
    t_avg_us: float | None
    t_stdev_us: float | None
    p99_us: float | None
    p999_us: float | None


@dataclass(frozen=True)
class WriteLat:
    """An ``ib_write_lat`` run."""

    header: PerftestHeader
    rows: tuple[LatRow, ...]
    duplicate_rows: int


def _common(device: str, size: int | None, port: int | None, gid_index: int | None) -> list[str]:
    argv = ["-d", device, "-F"]
    argv += ["-a"] if size is None else ["-s", str(size)]
    if port is not None:
        argv += ["-p", str(port)]
    if gid_index is not None:
        argv += ["-x", str(gid_index)]
    return argv


def write_bw_command(
    device: str,
    server: str | None = None,
    *,
    size: int | None = 1 << 20,
    qps: int = 1,
    duration_s: int | None = None,
    port: int | None = None,
    gid_index: int | None = None,
) -> list[str]:
    """argv of ``ib_write_bw``: the server side when ``server`` is None, else the client.

    ``size`` None sweeps all sizes (``-a``). Bandwidth is reported in Gb/s.
    """
    argv = [
        "ib_write_bw",
        *_common(device, size, port, gid_index),
        "-q",
        str(qps),
        "--report_gbits",
    ]
    if duration_s is not None:
        argv += ["-D", str(duration_s)]
    return argv + ([server] if server is not None else [])


def write_lat_command(
    device: str,
    server: str | None = None,
    *,
    size: int | None = 2,
    iterations: int = 5000,
    port: int | None = None,
    gid_index: int | None = None,
) -> list[str]:
    """argv of ``ib_write_lat``: the server side when ``server`` is None, else the client."""
    argv = ["ib_write_lat", *_common(device, size, port, gid_index), "-n", str(iterations)]
    return argv + ([server] if server is not None else [])


def _header(kind: str, lines: Sequence[str], want: str) -> tuple[PerftestHeader, int]:
    """The header facts and the index of the table header line."""
    title: str | None = None
    settings: dict[str, str] = {}
    in_header = False
    table = -1
    for i, line in enumerate(lines):
        match = _TITLE.match(line)
        if match is not None:
            if match.group("what") != want:
                raise ParseError(
                    f"{kind}: this is a {match.group('title')!r} output, not a {want} test"
                )
            title, in_header = title or match.group("title"), True
        elif _SEPARATOR.match(line):
            in_header = False
        elif in_header:
            for pair in _PAIR.finditer(line):
                settings.setdefault(pair.group("key").strip(), pair.group("value"))
        elif line.lstrip().startswith("#bytes") and table < 0:
            table = i
    if title is None:
        failure = next((ln.strip() for ln in lines if _FAILURE.search(ln)), None)
        reason = f": {failure!r}" if failure else ""
        raise ParseError(f"{kind}: no perftest title line such as 'RDMA_Write {want} Test'{reason}")
    if table < 0:
        failure = next((ln.strip() for ln in lines if _FAILURE.search(ln)), None)
        raise ParseError(
            f"{kind}: no '#bytes' result table (run failed or cut short)"
            + (f": {failure!r}" if failure else "")
        )
    mtu = settings.get("Mtu")
    header = PerftestHeader(
        test=title,
        device=settings.get("Device"),
        link_type=settings.get("Link type"),
        transport=settings.get("Transport type"),
        connection=settings.get("Connection type"),
        qps=int_or_none(kind, "Number of qps", settings.get("Number of qps")),
        mtu_bytes=int_or_none(kind, "Mtu", mtu.split("[")[0] if mtu else None),
        settings=dict(sorted(settings.items())),
    )
    return header, table


def _rows(kind: str, lines: Sequence[str], table: int) -> tuple[list[str], list[list[float]], int]:
    """Column names, the unique numeric rows after the table header, and duplicates dropped."""
    columns = _COLUMN.findall(lines[table])
    rows: list[list[float]] = []
    seen: set[tuple[float, ...]] = set()
    duplicates = 0
    for number, line in enumerate(lines[table + 1 :], start=table + 2):
        if not _ROW.match(line):
            continue
        values = [float(v) for v in line.split()]
        if len(values) != len(columns):
            raise ParseError(
                f"{kind}: line {number} has {len(values)} values for "
                f"{len(columns)} columns: {line.strip()!r}"
            )
        if tuple(values) in seen:
            duplicates += 1
            continue
        seen.add(tuple(values))
        rows.append(values)
    if not rows:
        raise ParseError(f"{kind}: the result table has no rows (run failed or cut short)")
    return columns, rows, duplicates


def parse_write_bw(text: str) -> WriteBw:
    """Parse an ``ib_write_bw`` output (either side)."""
    kind = "ib-write-bw"
    check_text(kind, text)
    lines = text.splitlines()
    header, table = _header(kind, lines, "BW")
    columns, values, duplicates = _rows(kind, lines, table)
    units = {c[c.index("[") + 1 : -1] for c in columns if c.startswith("BW ")}
    if len(units) != 1 or next(iter(units)) not in _BW_FACTORS:
        raise ParseError(
            f"{kind}: bandwidth unit {sorted(units)!r} is not one of {', '.join(_BW_FACTORS)}"
        )
    unit = units.pop()
    factor = _BW_FACTORS[unit]
    index = {name.split("[")[0]: i for i, name in enumerate(columns)}
    for needed in ("#bytes", "#iterations", "BW peak", "BW average"):
        if needed not in index:
            raise ParseError(f"{kind}: the result table has no {needed!r} column")
    rows = tuple(
        BwRow(
            bytes=int(v[index["#bytes"]]),
            iterations=int(v[index["#iterations"]]),
            bw_peak=v[index["BW peak"]],
            bw_average=v[index["BW average"]],
            unit=unit,
            bw_peak_gbps=round(v[index["BW peak"]] * factor, 3),
            bw_average_gbps=round(v[index["BW average"]] * factor, 3),
            msg_rate_mpps=v[index["MsgRate"]] if "MsgRate" in index else None,
        )
        for v in values
    )
    return WriteBw(header, unit, rows, duplicates)


def parse_write_lat(text: str) -> WriteLat:
    """Parse an ``ib_write_lat`` output (either side); times must be in usec."""
    kind = "ib-write-lat"
    check_text(kind, text)
    lines = text.splitlines()
    header, table = _header(kind, lines, "Latency")
    columns, values, duplicates = _rows(kind, lines, table)
    index: dict[str, int] = {}
    for i, column in enumerate(columns):
        name, _, unit = column.partition("[")
        if unit and unit != "usec]":
            raise ParseError(f"{kind}: column {column!r} is not in usec")
        index[name.split(" ")[0]] = i
    if "#bytes" not in index or "#iterations" not in index:
        raise ParseError(f"{kind}: the result table has no '#bytes'/'#iterations' column")

    def get(row: list[float], column: str) -> float | None:
        return row[index[column]] if column in index else None

    rows = tuple(
        LatRow(
            int(v[index["#bytes"]]),
            int(v[index["#iterations"]]),
            **{field: get(v, column) for column, field in _LAT_COLUMNS.items()},
        )
        for v in values
    )
    return WriteLat(header, rows, duplicates)
