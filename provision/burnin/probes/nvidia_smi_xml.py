"""Probe ``nvidia-smi -q -x``: the full per-GPU report as XML (schemas v10 to v13).

The document carries a ``<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_vNN.dtd">``. The
parser never loads that DTD (expat does not fetch external entities) and refuses any internal
``<!ENTITY`` declaration, which nvidia-smi never writes, so entity-expansion tricks cannot run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

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
    GpuInfo,
    NvidiaSmiReport,
    PcieLink,
    RemappedRows,
    RetiredPages,
    ecc_counters,
)
from provision.errors import ParseError

KIND = "nvidia-smi-xml"


def command() -> list[str]:
    """argv of the probe."""
    return ["nvidia-smi", "-q", "-x"]


def _find(el: ET.Element, *paths: str) -> str | None:
    """Text of the first of ``paths`` present under ``el``, "no value" spellings as None."""
    for path in paths:
        found = el.find(path)
        if found is not None and found.text is not None and found.text.strip():
            return text_or_none(found.text)
    return None


def _int(el: ET.Element, *paths: str) -> int | None:
    return int_or_none(KIND, paths[0], _find(el, *paths))


def _gpu(index: int, el: ET.Element) -> GpuInfo:
    link = "pci/pci_gpu_link_info"
    pcie = PcieLink(
        gen_current=_int(el, f"{link}/pcie_gen/current_link_gen"),
        gen_max=_int(el, f"{link}/pcie_gen/max_link_gen"),
        width_current=_int(el, f"{link}/link_widths/current_link_width"),
        width_max=_int(el, f"{link}/link_widths/max_link_width"),
    )

    def ecc_scope(scope: str) -> ET.Element:
        found = el.find(f"ecc_errors/{scope}")
        return found if found is not None else ET.Element(scope)

    volatile, aggregate = ecc_scope("volatile"), ecc_scope("aggregate")
    retired = RetiredPages(
        single_bit=_int(el, "retired_pages/multiple_single_bit_retirement/retired_count"),
        double_bit=_int(el, "retired_pages/double_bit_retirement/retired_count"),
        pending=yes_no(
            KIND,
            "retired_pages/pending_retirement",
            _find(el, "retired_pages/pending_retirement", "retired_pages/pending_blacklist"),
        ),
    )
    remapped = RemappedRows(
        correctable=_int(el, "remapped_rows/remapped_row_corr"),
        uncorrectable=_int(el, "remapped_rows/remapped_row_unc"),
        pending=yes_no(
            KIND, "remapped_row_pending", _find(el, "remapped_rows/remapped_row_pending")
        ),
        failure=yes_no(
            KIND, "remapped_row_failure", _find(el, "remapped_rows/remapped_row_failure")
        ),
    )
    clocks = Clocks(
        graphics_mhz=_int(el, "clocks/graphics_clock"),
        sm_mhz=_int(el, "clocks/sm_clock"),
        memory_mhz=_int(el, "clocks/mem_clock"),
        max_sm_mhz=_int(el, "max_clocks/sm_clock"),
    )
    power = [
        f"{section}/{key}"
        for section in ("gpu_power_readings", "power_readings")
        for key in ("power_draw", "average_power_draw", "instant_power_draw")
    ]
    limit = [
        f"{section}/{key}"
        for section in ("gpu_power_readings", "power_readings")
        for key in ("current_power_limit", "power_limit", "enforced_power_limit")
    ]
    return GpuInfo(
        index=index,
        name=_find(el, "product_name"),
        uuid=_find(el, "uuid"),
        serial=_find(el, "serial"),
        vbios_version=_find(el, "vbios_version"),
        pci_bus_id=_find(el, "pci/pci_bus_id") or text_or_none(el.get("id")),
        persistence_mode=_find(el, "persistence_mode"),
        mig_mode=_find(el, "mig_mode/current_mig"),
        pcie=pcie,
        ecc_mode=_find(el, "ecc_mode/current_ecc"),
        ecc_volatile=ecc_counters(KIND, lambda key: _find(volatile, key)),
        ecc_aggregate=ecc_counters(KIND, lambda key: _find(aggregate, key)),
        retired_pages=retired,
        remapped_rows=remapped,
        clocks=clocks,
        power_draw_w=float_or_none(KIND, "power_draw", _find(el, *power)),
        power_limit_w=float_or_none(KIND, "power_limit", _find(el, *limit)),
        temperature_gpu_c=_int(el, "temperature/gpu_temp"),
        temperature_memory_c=_int(el, "temperature/memory_temp"),
    )


def parse(text: str) -> NvidiaSmiReport:
    """Parse the XML report; ParseError when it is not (complete) nvidia-smi XML."""
    check_text(KIND, text)
    if "<!ENTITY" in text:
        raise ParseError(
            f"{KIND}: refusing XML with <!ENTITY declarations (nvidia-smi writes none)"
        )
    stripped = text.lstrip()
    if not (stripped.startswith("<?xml") or stripped.startswith("<nvidia_smi_log")):
        raise ParseError(f"{KIND}: not nvidia-smi XML, output starts with {snippet(text)!r}")
    try:
        root = ET.fromstring(stripped)
    except ET.ParseError as exc:
        raise ParseError(f"{KIND}: malformed or truncated XML ({exc})") from exc
    if root.tag != "nvidia_smi_log":
        raise ParseError(f"{KIND}: root element is <{root.tag}>, expected <nvidia_smi_log>")
    attached = int_or_none(KIND, "attached_gpus", _find(root, "attached_gpus"))
    if attached is None:
        raise ParseError(f"{KIND}: <attached_gpus> is missing")
    gpus = tuple(_gpu(i, el) for i, el in enumerate(root.findall("gpu")))
    if not gpus and attached:
        raise ParseError(f"{KIND}: attached_gpus is {attached} but there is no <gpu> element")
    return NvidiaSmiReport(
        source=KIND,
        driver_version=_find(root, "driver_version"),
        cuda_version=_find(root, "cuda_version"),
        attached_gpus=attached,
        partial=len(gpus) < attached,
        gpus=gpus,
    )
