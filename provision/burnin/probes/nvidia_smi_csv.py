"""Probe ``nvidia-smi --query-gpu=... --format=csv``: chosen GPU fields, one row per GPU.

The builder owns the field list (:data:`FIELDS`). With a header line (``--format=csv``) the
parser maps columns by name, so any field order or subset works and units in the header
(``memory.total [MiB]``) or values (``81559 MiB``) are understood; without one
(``noheader``) it assumes :data:`FIELDS` or the ``fields`` passed in. Columns that no
:class:`~provision.burnin.probes.gpu.GpuInfo` attribute holds are ignored.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence

from provision.burnin.probes._common import (
    check_text,
    float_or_none,
    int_or_none,
    snippet,
    text_or_none,
    yes_no,
)
from provision.burnin.probes.gpu import (
    Clocks,
    EccCounters,
    GpuInfo,
    NvidiaSmiReport,
    PcieLink,
    RemappedRows,
    RetiredPages,
)
from provision.errors import ParseError

KIND = "nvidia-smi-csv"

FIELDS: tuple[str, ...] = (
    "index",
    "name",
    "uuid",
    "serial",
    "driver_version",
    "vbios_version",
    "pci.bus_id",
    "persistence_mode",
    "mig.mode.current",
    "pcie.link.gen.current",
    "pcie.link.gen.max",
    "pcie.link.width.current",
    "pcie.link.width.max",
    "ecc.mode.current",
    "ecc.errors.corrected.volatile.total",
    "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.corrected.aggregate.total",
    "ecc.errors.uncorrected.aggregate.total",
    "retired_pages.single_bit_ecc.count",
    "retired_pages.double_bit.count",
    "retired_pages.pending",
    "remapped_rows.correctable",
    "remapped_rows.uncorrectable",
    "remapped_rows.pending",
    "remapped_rows.failure",
    "clocks.gr",
    "clocks.sm",
    "clocks.mem",
    "clocks.max.sm",
    "power.draw",
    "power.limit",
    "temperature.gpu",
    "temperature.memory",
)
"""The fields :func:`command` queries, in order."""

_FAILURE = re.compile(
    r"^(Field \".*\" is not a valid field|NVIDIA-SMI has failed|No devices were found"
    r"|Failed to initialize NVML|Unable to determine)"
)
_HEADER_CELL = re.compile(r"^[a-z][A-Za-z0-9_.]*(?: \[[^\]]*\])?$")


def command(
    *, header: bool = False, units: bool = False, fields: Sequence[str] = FIELDS
) -> list[str]:
    """argv of the probe: ``--format=csv`` plus ``noheader``/``nounits`` unless asked for."""
    fmt = ["csv"] + ([] if header else ["noheader"]) + ([] if units else ["nounits"])
    return ["nvidia-smi", f"--query-gpu={','.join(fields)}", f"--format={','.join(fmt)}"]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in next(csv.reader([line], skipinitialspace=True))]


def _gpu(position: int, row: dict[str, str]) -> GpuInfo:
    def get(*names: str) -> str | None:
        for name in names:
            value = text_or_none(row.get(name))
            if value is not None:
                return value
        return None

    def num(*names: str) -> int | None:
        return int_or_none(KIND, names[0], get(*names))

    def flag(name: str) -> bool | None:
        return yes_no(KIND, name, get(name))

    def ecc(scope: str) -> EccCounters:
        def count(kind: str, part: str) -> int | None:
            return num(f"ecc.errors.{kind}.{scope}.{part}")

        return EccCounters(
            corrected=count("corrected", "total"),
            uncorrected=count("uncorrected", "total"),
            sram_corrected=count("corrected", "sram"),
            sram_uncorrected=count("uncorrected", "sram"),
            dram_corrected=count("corrected", "dram"),
            dram_uncorrected=count("uncorrected", "dram"),
        )

    index = num("index")
    return GpuInfo(
        index=position if index is None else index,
        name=get("name", "gpu_name"),
        uuid=get("uuid", "gpu_uuid"),
        serial=get("serial", "gpu_serial"),
        vbios_version=get("vbios_version"),
        pci_bus_id=get("pci.bus_id", "gpu_bus_id"),
        persistence_mode=get("persistence_mode"),
        mig_mode=get("mig.mode.current"),
        pcie=PcieLink(
            gen_current=num("pcie.link.gen.current", "pcie.link.gen.gpucurrent"),
            gen_max=num("pcie.link.gen.max", "pcie.link.gen.gpumax"),
            width_current=num("pcie.link.width.current"),
            width_max=num("pcie.link.width.max"),
        ),
        ecc_mode=get("ecc.mode.current"),
        ecc_volatile=ecc("volatile"),
        ecc_aggregate=ecc("aggregate"),
        retired_pages=RetiredPages(
            single_bit=num("retired_pages.single_bit_ecc.count", "retired_pages.sbe"),
            double_bit=num("retired_pages.double_bit.count", "retired_pages.dbe"),
            pending=flag("retired_pages.pending"),
        ),
        remapped_rows=RemappedRows(
            correctable=num("remapped_rows.correctable", "remapped_rows.sbe"),
            uncorrectable=num("remapped_rows.uncorrectable", "remapped_rows.dbe"),
            pending=flag("remapped_rows.pending"),
            failure=flag("remapped_rows.failure"),
        ),
        clocks=Clocks(
            graphics_mhz=num("clocks.gr", "clocks.current.graphics"),
            sm_mhz=num("clocks.sm", "clocks.current.sm"),
            memory_mhz=num("clocks.mem", "clocks.current.memory"),
            max_sm_mhz=num("clocks.max.sm"),
        ),
        power_draw_w=float_or_none(
            KIND, "power.draw", get("power.draw", "power.draw.average", "power.draw.instant")
        ),
        power_limit_w=float_or_none(
            KIND, "power.limit", get("power.limit", "enforced.power.limit")
        ),
        temperature_gpu_c=num("temperature.gpu"),
        temperature_memory_c=num("temperature.memory"),
    )


def parse(text: str, fields: Sequence[str] | None = None) -> NvidiaSmiReport:
    """Parse the CSV answer; ``fields`` names the columns of a header-less answer."""
    check_text(KIND, text)
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    for _, line in lines:
        if _FAILURE.match(line.strip()):
            raise ParseError(f"{KIND}: nvidia-smi reported an error: {snippet(line, 100)!r}")
    first = _cells(lines[0][1])
    if all(_HEADER_CELL.match(cell) for cell in first):
        names = [cell.split(" [")[0] for cell in first]
        lines = lines[1:]
    else:
        names = list(fields if fields is not None else FIELDS)
    if not lines:
        raise ParseError(f"{KIND}: a header but no GPU rows")
    rows = []
    for number, line in lines:
        cells = _cells(line)
        if len(cells) != len(names):
            raise ParseError(
                f"{KIND}: line {number} has {len(cells)} values, expected {len(names)}: "
                f"{snippet(line)!r}"
            )
        rows.append(dict(zip(names, cells, strict=True)))
    gpus = tuple(_gpu(i, row) for i, row in enumerate(rows))
    count = int_or_none(KIND, "count", rows[0].get("count"))
    attached = count if count is not None else len(gpus)
    return NvidiaSmiReport(
        source=KIND,
        driver_version=text_or_none(rows[0].get("driver_version")),
        cuda_version=None,
        attached_gpus=attached,
        partial=len(gpus) < attached,
        gpus=gpus,
    )
