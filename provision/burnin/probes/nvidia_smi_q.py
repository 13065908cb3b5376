"""Probe ``nvidia-smi -q``: the same per-GPU facts as the XML form, from the text report.

The text is an indentation tree: ``Key<pad>: value`` leaves and bare ``Section`` lines, four
spaces per level, one ``GPU <bus id>`` section per GPU. ``-q -d SECTION`` answers (only some
sections) parse too; absent facts are None.

Truncation is an error: every GPU section must end with the same last section as the first
GPU section, and a full report's GPU sections must all reach ``Processes``. A report with
fewer GPU sections than "Attached GPUs" parses with ``partial=True``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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

KIND = "nvidia-smi-q"
BANNER = "==============NVSMI LOG=============="

_LEAF = re.compile(r"^(?P<key>\S.*?)\s+:(?: (?P<value>.*))?$")
_GPU = re.compile(r"^GPU (?P<bus>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])$")
_ERROR_LINE = re.compile(r"unable to|error|failed", re.IGNORECASE)
_ALIASES = {"sram_uncorrectable_sec_ded": "sram_uncorrectable_secded"}


def command(display: tuple[str, ...] = ()) -> list[str]:
    """argv of the probe; ``display`` limits it to sections, e.g. ``("ECC", "PAGE_RETIREMENT")``."""
    argv = ["nvidia-smi", "-q"]
    if display:
        argv += ["-d", ",".join(display)]
    return argv


def _norm(key: str) -> str:
    norm = re.sub(r"[^0-9a-z]+", "_", key.strip().lower()).strip("_")
    return _ALIASES.get(norm, norm)


@dataclass
class _Node:
    """One line of the tree: its key, value (None for a section) and nested lines."""

    key: str
    value: str | None
    line: int
    children: list[_Node] = field(default_factory=list)

    def find(self, path: str) -> _Node | None:
        node: _Node | None = self
        for part in path.split("/"):
            if node is None:
                return None
            node = next((c for c in node.children if c.key == part), None)
        return node

    def get(self, *paths: str) -> str | None:
        """Value of the first of ``paths`` that has one; "no value" spellings as None."""
        for path in paths:
            node = self.find(path)
            if node is not None and node.value is not None:
                value = text_or_none(node.value)
                if value is not None:
                    return value
        return None


def _tree(lines: list[tuple[int, str]]) -> tuple[_Node, list[str]]:
    """Build the indentation tree below a virtual root; also collect error lines."""
    root = _Node("", None, 0)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    errors: list[str] = []
    for number, raw in lines:
        if not raw.strip() or raw.strip() == BANNER:
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        content = raw.strip()
        if indent % 4:
            raise ParseError(f"{KIND}: line {number} is not indented by fours: {snippet(raw)!r}")
        leaf = _LEAF.match(content)
        if indent == 0 and leaf is None and _GPU.match(content) is None:
            if _ERROR_LINE.search(content):
                errors.append(content)
                continue
            raise ParseError(f"{KIND}: unexpected line {number}: {snippet(content)!r}")
        while stack[-1][0] >= indent:
            stack.pop()
        if leaf is not None:
            node = _Node(_norm(leaf.group("key")), leaf.group("value") or "", number)
        else:
            node = _Node(content if indent == 0 else _norm(content), None, number)
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root, errors


def _int(gpu: _Node, *paths: str) -> int | None:
    return int_or_none(KIND, paths[0], gpu.get(*paths))


def _gpu(index: int, bus: str, gpu: _Node) -> GpuInfo:
    link = "pci/gpu_link_info"
    pcie = PcieLink(
        gen_current=_int(gpu, f"{link}/pcie_generation/current"),
        gen_max=_int(gpu, f"{link}/pcie_generation/max"),
        width_current=_int(gpu, f"{link}/link_width/current"),
        width_max=_int(gpu, f"{link}/link_width/max"),
    )
    retired = RetiredPages(
        single_bit=_int(gpu, "retired_pages/single_bit_ecc"),
        double_bit=_int(gpu, "retired_pages/double_bit_ecc"),
        pending=yes_no(
            KIND,
            "pending_page_blacklist",
            gpu.get(
                "retired_pages/pending_page_blacklist", "retired_pages/pending_page_retirement"
            ),
        ),
    )
    remapped = RemappedRows(
        correctable=_int(gpu, "remapped_rows/correctable_error"),
        uncorrectable=_int(gpu, "remapped_rows/uncorrectable_error"),
        pending=yes_no(KIND, "remapped_rows/pending", gpu.get("remapped_rows/pending")),
        failure=yes_no(
            KIND, "remapping_failure_occurred", gpu.get("remapped_rows/remapping_failure_occurred")
        ),
    )
    clocks = Clocks(
        graphics_mhz=_int(gpu, "clocks/graphics"),
        sm_mhz=_int(gpu, "clocks/sm"),
        memory_mhz=_int(gpu, "clocks/memory"),
        max_sm_mhz=_int(gpu, "max_clocks/sm"),
    )
    readings = ("gpu_power_readings", "power_readings")
    draw = [
        f"{r}/{k}"
        for r in readings
        for k in ("power_draw", "average_power_draw", "instantaneous_power_draw")
    ]
    limit = [
        f"{r}/{k}"
        for r in readings
        for k in ("current_power_limit", "power_limit", "enforced_power_limit")
    ]
    return GpuInfo(
        index=index,
        name=gpu.get("product_name"),
        uuid=gpu.get("gpu_uuid"),
        serial=gpu.get("serial_number"),
        vbios_version=gpu.get("vbios_version"),
        pci_bus_id=gpu.get("pci/bus_id") or bus,
        persistence_mode=gpu.get("persistence_mode"),
        mig_mode=gpu.get("mig_mode/current"),
        pcie=pcie,
        ecc_mode=gpu.get("ecc_mode/current"),
        ecc_volatile=ecc_counters(KIND, lambda key: gpu.get(f"ecc_errors/volatile/{key}")),
        ecc_aggregate=ecc_counters(KIND, lambda key: gpu.get(f"ecc_errors/aggregate/{key}")),
        retired_pages=retired,
        remapped_rows=remapped,
        clocks=clocks,
        power_draw_w=float_or_none(KIND, "power_draw", gpu.get(*draw)),
        power_limit_w=float_or_none(KIND, "power_limit", gpu.get(*limit)),
        temperature_gpu_c=_int(gpu, "temperature/gpu_current_temp"),
        temperature_memory_c=_int(gpu, "temperature/memory_current_temp"),
    )


def _check_complete(sections: list[tuple[str, _Node]]) -> None:
    """Raise when a GPU section was cut short (see the module docstring)."""
    first = sections[0][1]
    if not first.children:
        raise ParseError(f"{KIND}: truncated: GPU {sections[0][0]} section is empty")
    last_key = first.children[-1].key
    full = first.find("product_name") is not None
    for bus, node in sections:
        keys = {child.key for child in node.children}
        if full and "processes" not in keys:
            raise ParseError(f"{KIND}: truncated: GPU {bus} section ends before 'Processes'")
        if last_key not in keys:
            raise ParseError(f"{KIND}: truncated: GPU {bus} section has no {last_key!r}")


def parse(text: str) -> NvidiaSmiReport:
    """Parse the text report; ParseError when it is not (complete) ``nvidia-smi -q`` output."""
    check_text(KIND, text)
    if BANNER not in text:
        raise ParseError(f"{KIND}: no NVSMI LOG banner, output starts with {snippet(text)!r}")
    first = text[: text.index(BANNER)].count("\n") + 1
    body = text[text.index(BANNER) :].splitlines()
    root, errors = _tree([(n, line.rstrip()) for n, line in enumerate(body, start=first)])
    attached = int_or_none(KIND, "Attached GPUs", root.get("attached_gpus"))
    if attached is None:
        raise ParseError(f"{KIND}: no 'Attached GPUs' line")
    sections = []
    for node in root.children:
        match = _GPU.match(node.key)
        if match is not None:
            sections.append((match.group("bus"), node))
    if sections:
        _check_complete(sections)
    elif attached and not errors:
        raise ParseError(f"{KIND}: truncated: 'Attached GPUs' is {attached} but no GPU section")
    gpus = tuple(_gpu(i, bus, node) for i, (bus, node) in enumerate(sections))
    return NvidiaSmiReport(
        source=KIND,
        driver_version=root.get("driver_version"),
        cuda_version=root.get("cuda_version"),
        attached_gpus=attached,
        partial=len(gpus) < attached,
        gpus=gpus,
        errors=tuple(errors),
    )
