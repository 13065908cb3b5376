"""``nvidia-smi --query-gpu=FIELDS --format=csv[,noheader][,nounits]``.

Fields are printed under their canonical names (``gpu_name`` prints as ``name``), values joined
by ``", "``, units in the header as ``[MiB]`` and after values unless ``nounits``; unsupported
values print ``[N/A]`` as the real tool does. An unknown field is an error (exit 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from provision.lab.hwsim.nvsmi_data import GpuView
from provision.lab.hwsim.personality import Personality
from provision.lab.hwsim.state import SimExit

NA = "[N/A]"
Getter = Callable[[GpuView], str]


def _ecc(kind: str) -> Getter:
    def get(g: GpuView) -> str:
        if kind == "uncorrected":
            return str(g.ecc_dram_uncorrected)
        return str(g.ecc_dram_corrected)

    return get


def _fields(facts: Personality, count: int, stamp: str) -> dict[str, tuple[str, Getter]]:
    """canonical field name -> (unit, value getter)."""
    f: dict[str, tuple[str, Getter]] = {
        "timestamp": ("", lambda g: stamp),
        "driver_version": ("", lambda g: facts.driver_version),
        "count": ("", lambda g: str(count)),
        "name": ("", lambda g: g.name),
        "serial": ("", lambda g: g.serial),
        "uuid": ("", lambda g: g.uuid),
        "pci.bus_id": ("", lambda g: g.bus_id),
        "pci.domain": ("", lambda g: "0x0000"),
        "pci.bus": ("", lambda g: "0x" + g.bus_id.split(":")[1]),
        "pci.device": ("", lambda g: "0x00"),
        "pci.device_id": ("", lambda g: "0x" + g.pci_device_id),
        "pci.sub_device_id": ("", lambda g: "0x" + g.pci_sub_system_id),
        "index": ("", lambda g: str(g.index)),
        "display_mode": ("", lambda g: "Disabled"),
        "display_active": ("", lambda g: "Disabled"),
        "persistence_mode": ("", lambda g: "Enabled"),
        "vbios_version": ("", lambda g: g.vbios),
        "inforom.img": ("", lambda g: g.inforom_img),
        "inforom.oem": ("", lambda g: "2.1"),
        "inforom.ecc": ("", lambda g: "7.16"),
        "inforom.pwr": ("", lambda g: NA),
        "pstate": ("", lambda g: "P0"),
        "fan.speed": ("%", lambda g: NA),
        "memory.total": ("MiB", lambda g: str(g.memory_total)),
        "memory.reserved": ("MiB", lambda g: str(g.memory_reserved)),
        "memory.used": ("MiB", lambda g: str(g.memory_used)),
        "memory.free": ("MiB", lambda g: str(g.memory_free)),
        "compute_mode": ("", lambda g: "Default"),
        "compute_cap": ("", lambda g: g.compute_cap),
        "utilization.gpu": ("%", lambda g: "0"),
        "utilization.memory": ("%", lambda g: "0"),
        "ecc.mode.current": ("", lambda g: "Enabled"),
        "ecc.mode.pending": ("", lambda g: "Enabled"),
        "retired_pages.single_bit_ecc.count": ("", lambda g: NA),
        "retired_pages.double_bit.count": ("", lambda g: NA),
        "retired_pages.pending": ("", lambda g: NA),
        "remapped_rows.correctable": ("", lambda g: "0"),
        "remapped_rows.uncorrectable": ("", lambda g: str(g.remapped_unc)),
        "remapped_rows.pending": ("", lambda g: "Yes" if g.remap_pending else "No"),
        "remapped_rows.failure": ("", lambda g: "No"),
        "temperature.gpu": ("", lambda g: str(g.temp_gpu)),
        "temperature.memory": ("", lambda g: str(g.temp_mem)),
        "power.management": ("", lambda g: "Enabled"),
        "power.draw": ("W", lambda g: f"{g.power_draw:.2f}"),
        "power.draw.instant": ("W", lambda g: f"{g.power_draw:.2f}"),
        "power.draw.average": ("W", lambda g: f"{g.power_draw:.2f}"),
        "power.limit": ("W", lambda g: f"{g.power_limit:.2f}"),
        "enforced.power.limit": ("W", lambda g: f"{g.power_limit:.2f}"),
        "power.default_limit": ("W", lambda g: f"{g.power_limit:.2f}"),
        "power.min_limit": ("W", lambda g: "200.00"),
        "power.max_limit": ("W", lambda g: f"{g.power_limit:.2f}"),
        "clocks.current.graphics": ("MHz", lambda g: str(g.clock_graphics)),
        "clocks.current.sm": ("MHz", lambda g: str(g.clock_graphics)),
        "clocks.current.memory": ("MHz", lambda g: str(g.clock_mem)),
        "clocks.current.video": ("MHz", lambda g: "765"),
        "clocks.max.graphics": ("MHz", lambda g: str(g.max_graphics)),
        "clocks.max.sm": ("MHz", lambda g: str(g.max_graphics)),
        "clocks.max.memory": ("MHz", lambda g: str(g.max_mem)),
        "clocks_event_reasons.active": ("", lambda g: "0x0000000000000001"),
        "mig.mode.current": ("", lambda g: "Disabled"),
        "mig.mode.pending": ("", lambda g: "Disabled"),
        "fabric.state": ("", lambda g: "Completed"),
        "fabric.status": ("", lambda g: "Success"),
    }
    for link in ("current", "max", "gpucurrent", "gpumax", "hostmax"):
        f[f"pcie.link.gen.{link}"] = ("", lambda g: str(g.pcie_gen))
    for link in ("current", "max"):
        f[f"pcie.link.width.{link}"] = ("", lambda g: "16")
    for kind in ("corrected", "uncorrected"):
        for scope in ("volatile", "aggregate"):
            for part in ("device_memory", "dram", "total"):
                f[f"ecc.errors.{kind}.{scope}.{part}"] = ("", _ecc(kind))
            f[f"ecc.errors.{kind}.{scope}.sram"] = ("", lambda g: "0")
    return f


ALIASES = {
    "gpu_name": "name",
    "gpu_serial": "serial",
    "gpu_uuid": "uuid",
    "gpu_bus_id": "pci.bus_id",
    "clocks.gr": "clocks.current.graphics",
    "clocks.sm": "clocks.current.sm",
    "clocks.mem": "clocks.current.memory",
    "clocks.video": "clocks.current.video",
    "clocks.max.gr": "clocks.max.graphics",
    "clocks.max.mem": "clocks.max.memory",
    "clocks_throttle_reasons.active": "clocks_event_reasons.active",
    "memory.usage": "memory.used",
}


def render_csv(facts: Personality, gpus: list[GpuView], query: str, fmt: str, at: float) -> str:
    """The CSV text for ``--query-gpu=query --format=fmt``; SimExit(2) on a bad field/format."""
    options = [o.strip() for o in fmt.split(",") if o.strip()]
    if "csv" not in options:
        raise SimExit(2, f"\"{fmt}\" is not a valid format.\nPlease run 'nvidia-smi -h' for help.")
    for opt in options:
        if opt not in ("csv", "noheader", "nounits"):
            raise SimExit(
                2, f"\"{opt}\" is not a valid format option.\nPlease run 'nvidia-smi -h' for help."
            )
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"
    table = _fields(facts, len(gpus), stamp)
    names = [q.strip() for q in query.split(",") if q.strip()]
    if not names:
        raise SimExit(2, "Please specify the fields to query.")
    canon: list[str] = []
    for name in names:
        key = ALIASES.get(name, name)
        if key not in table:
            raise SimExit(
                2,
                f'Field "{name}" is not a valid field to query.\n\n'
                "Run 'nvidia-smi --help-query-gpu' for the list of fields.",
            )
        canon.append(key)
    lines = []
    if "noheader" not in options:
        lines.append(", ".join(f"{k} [{table[k][0]}]" if table[k][0] else k for k in canon))
    for g in gpus:
        cells = []
        for key in canon:
            unit, get = table[key]
            value = get(g)
            if unit and value != NA and "nounits" not in options:
                value = f"{value} {unit}"
            cells.append(value)
        lines.append(", ".join(cells))
    return "".join(line + "\n" for line in lines)
