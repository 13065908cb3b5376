"""The GPU facts every nvidia-smi form reports, as one model.

``nvidia-smi -q -x`` (XML), ``nvidia-smi -q`` (text) and ``nvidia-smi --query-gpu`` (CSV) all
parse to :class:`NvidiaSmiReport`, so a burn-in judge reads the same fields whichever form a
host produced. A field the form (or the driver) does not report is ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provision.burnin.probes._common import add_optional, int_or_none


@dataclass(frozen=True)
class PcieLink:
    """PCIe generation and width of the GPU's link, current and maximum."""

    gen_current: int | None
    gen_max: int | None
    width_current: int | None
    width_max: int | None

    @property
    def downgraded(self) -> bool:
        """True when the link trained below its maximum generation or width."""
        pairs = [(self.gen_current, self.gen_max), (self.width_current, self.width_max)]
        return any(cur is not None and top is not None and cur < top for cur, top in pairs)


@dataclass(frozen=True)
class EccCounters:
    """ECC error counts of one scope (volatile since boot, or aggregate lifetime).

    ``corrected``/``uncorrected`` are totals: SRAM + DRAM on Ampere and later, the
    single-bit/double-bit totals on older schemas. The SRAM/DRAM parts are kept when reported.
    """

    corrected: int | None
    uncorrected: int | None
    sram_corrected: int | None
    sram_uncorrected: int | None
    dram_corrected: int | None
    dram_uncorrected: int | None


@dataclass(frozen=True)
class RetiredPages:
    """Dynamic page retirement (pre-Ampere); all None where row remapping replaced it."""

    single_bit: int | None
    double_bit: int | None
    pending: bool | None


@dataclass(frozen=True)
class RemappedRows:
    """Row remapping (Ampere and later); all None where not supported."""

    correctable: int | None
    uncorrectable: int | None
    pending: bool | None
    failure: bool | None


@dataclass(frozen=True)
class Clocks:
    """Current and maximum clocks in MHz."""

    graphics_mhz: int | None
    sm_mhz: int | None
    memory_mhz: int | None
    max_sm_mhz: int | None


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as nvidia-smi reports it."""

    index: int
    name: str | None
    uuid: str | None
    serial: str | None
    vbios_version: str | None
    pci_bus_id: str | None
    persistence_mode: str | None
    mig_mode: str | None
    pcie: PcieLink
    ecc_mode: str | None
    ecc_volatile: EccCounters
    ecc_aggregate: EccCounters
    retired_pages: RetiredPages
    remapped_rows: RemappedRows
    clocks: Clocks
    power_draw_w: float | None
    power_limit_w: float | None
    temperature_gpu_c: int | None
    temperature_memory_c: int | None


@dataclass(frozen=True)
class NvidiaSmiReport:
    """A whole nvidia-smi answer: driver facts and one entry per GPU, in index order.

    ``partial`` is True when there are fewer GPU entries than ``attached_gpus`` (a ``-i``
    selection, or an output cut short between two GPU sections): a judge must not read a
    partial report as "all GPUs healthy". ``errors`` are lines nvidia-smi printed in place of
    data, e.g. "Unable to determine the device handle for GPU 0000:9B:00.0: Unknown Error".
    """

    source: str
    driver_version: str | None
    cuda_version: str | None
    attached_gpus: int
    partial: bool
    gpus: tuple[GpuInfo, ...]
    errors: tuple[str, ...] = ()


def ecc_counters(kind: str, get: Callable[[str], str | None]) -> EccCounters:
    """ECC counters of one scope from normalised keys, whatever the schema version.

    ``get`` looks a key up inside the scope (``volatile`` or ``aggregate``) and returns None
    when absent. Keys: ``sram_correctable``, ``sram_uncorrectable`` (or its ``_parity`` and
    ``_secded`` halves, schema v13), ``dram_correctable``, ``dram_uncorrectable``; older
    schemas: ``single_bit/total`` and ``double_bit/total``.
    """

    def num(key: str) -> int | None:
        return int_or_none(kind, key, get(key))

    sram_corr = num("sram_correctable")
    sram_unc = num("sram_uncorrectable")
    if sram_unc is None:
        sram_unc = add_optional(num("sram_uncorrectable_parity"), num("sram_uncorrectable_secded"))
    dram_corr = num("dram_correctable")
    dram_unc = num("dram_uncorrectable")
    corrected = add_optional(sram_corr, dram_corr)
    uncorrected = add_optional(sram_unc, dram_unc)
    if corrected is None:
        corrected = num("single_bit/total")
    if uncorrected is None:
        uncorrected = num("double_bit/total")
    return EccCounters(corrected, uncorrected, sram_corr, sram_unc, dram_corr, dram_unc)
