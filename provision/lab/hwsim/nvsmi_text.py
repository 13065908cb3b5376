"""nvidia-smi's human-readable outputs: ``-L``, ``nvlink -s``, the default table, ``-q``,
``--version``. Layouts follow the R535+ driver; values come from ``GpuView``."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from provision.lab.hwsim.nvsmi_data import GpuView
from provision.lab.hwsim.personality import LABEL, Personality


def render_list(gpus: list[GpuView]) -> str:
    return "".join(f"GPU {g.index}: {g.name} (UUID: {g.uuid})\n" for g in gpus)


def render_nvlink_status(gpus: list[GpuView]) -> str:
    out = []
    for g in gpus:
        out.append(f"GPU {g.index}: {g.name} (UUID: {g.uuid})\n")
        if g.nvlink_inactive:
            out.append("NVML: Unable to retrieve NVLink information as all links are inactive\n")
            continue
        out.extend(f"\t Link {n}: {speed:g} GB/s\n" for n, speed in enumerate(g.nvlink_gbps))
    return "".join(out)


def render_version(facts: Personality) -> str:
    nvml = ".".join(facts.driver_version.split(".")[:2])
    return (
        f"NVIDIA-SMI version  : {facts.driver_version}\n"
        f"NVML version        : {nvml}\n"
        f"DRIVER version      : {facts.driver_version}\n"
        f"CUDA Version        : {facts.cuda_version}\n"
        f"Simulated by        : {LABEL}\n"
    )


def render_table(facts: Personality, gpus: list[GpuView], at: float) -> str:
    """The default ``nvidia-smi`` table."""
    rule = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"
    wide = "+" + "-" * 89 + "+"
    lines = [
        time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(at)) + "       ",
        wide,
        f"| NVIDIA-SMI {facts.driver_version:<23}Driver Version: "
        f"{facts.driver_version:<15}CUDA Version: {facts.cuda_version:<9}|",
        rule.replace("+", "|", 1)[:-1] + "|",
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A "
        "| Volatile Uncorr. ECC |",
        "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage "
        "| GPU-Util  Compute M. |",
        "|" + " " * 41 + "|" + " " * 24 + "|" + f"{'MIG M.':>21} |",
        "|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|",
    ]
    for g in gpus:
        name = g.name if len(g.name) <= 31 else g.name[:28] + "..."
        lines.append(
            f"|{g.index:>4}  {name:<31}On  |{g.bus_id:>19} Off |{g.ecc_dram_uncorrected:>21} |"
        )
        power = f"{round(g.power_draw)}W / {g.power_limit:>4}W"
        lines.append(
            f"| N/A {g.temp_gpu:>4}C    P0{power:>24} |"
            f"{g.memory_used:>8}MiB / {g.memory_total:>6}MiB |"
            f"{0:>7}%{'Default':>13} |"
        )
        lines.append("|" + " " * 41 + "|" + " " * 24 + "|" + f"{'Disabled':>21} |")
        lines.append(rule)
    lines += [
        "",
        wide,
        f"| {'Processes:':<88}|",
        f"| {' GPU   GI   CI              PID   Type   Process name':<77}{'GPU Memory':<11}|",
        f"| {'       ID   ID':<77}{'Usage':<11}|",
        "|" + "=" * 89 + "|",
        f"| {' No running processes found':<88}|",
        wide,
    ]
    return "\n".join(lines) + "\n"


_LABELS = {
    "timestamp": "Timestamp",
    "driver_version": "Driver Version",
    "cuda_version": "CUDA Version",
    "attached_gpus": "Attached GPUs",
    "product_name": "Product Name",
    "product_brand": "Product Brand",
    "product_architecture": "Product Architecture",
    "display_mode": "Display Mode",
    "display_active": "Display Active",
    "persistence_mode": "Persistence Mode",
    "addressing_mode": "Addressing Mode",
    "mig_mode": "MIG Mode",
    "mig_devices": "MIG Devices",
    "accounting_mode": "Accounting Mode",
    "accounting_mode_buffer_size": "Accounting Mode Buffer Size",
    "driver_model": "Driver Model",
    "serial": "Serial Number",
    "uuid": "GPU UUID",
    "minor_number": "Minor Number",
    "vbios_version": "VBIOS Version",
    "multigpu_board": "MultiGPU Board",
    "board_id": "Board ID",
    "board_part_number": "Board Part Number",
    "gpu_part_number": "GPU Part Number",
    "gpu_fru_part_number": "FRU Part Number",
    "gpu_module_id": "Module ID",
    "inforom_version": "Inforom Version",
    "img_version": "Image Version",
    "oem_object": "OEM Object",
    "ecc_object": "ECC Object",
    "pwr_object": "Power Management Object",
    "gpu_operation_mode": "GPU Operation Mode",
    "gpu_virtualization_mode": "GPU Virtualization Mode",
    "virtualization_mode": "Virtualization Mode",
    "host_vgpu_mode": "Host VGPU Mode",
    "gpu_reset_status": "GPU Reset Status",
    "reset_required": "Reset Required",
    "drain_and_reset_recommended": "Drain and Reset Recommended",
    "pci": "PCI",
    "pci_bus": "Bus",
    "pci_device": "Device",
    "pci_domain": "Domain",
    "pci_device_id": "Device Id",
    "pci_bus_id": "Bus Id",
    "pci_sub_system_id": "Sub System Id",
    "pci_gpu_link_info": "GPU Link Info",
    "pcie_gen": "PCIe Generation",
    "max_link_gen": "Max",
    "current_link_gen": "Current",
    "device_current_link_gen": "Device Current",
    "max_device_link_gen": "Device Max",
    "max_host_link_gen": "Host Max",
    "link_widths": "Link Width",
    "max_link_width": "Max",
    "current_link_width": "Current",
    "replay_counter": "Replays Since Reset",
    "replay_rollover_counter": "Replay Number Rollovers",
    "tx_util": "Tx Throughput",
    "rx_util": "Rx Throughput",
    "fan_speed": "Fan Speed",
    "performance_state": "Performance State",
    "fb_memory_usage": "FB Memory Usage",
    "bar1_memory_usage": "BAR1 Memory Usage",
    "compute_mode": "Compute Mode",
    "utilization": "Utilization",
    "gpu_util": "Gpu",
    "memory_util": "Memory",
    "encoder_util": "Encoder",
    "decoder_util": "Decoder",
    "ecc_mode": "ECC Mode",
    "ecc_errors": "ECC Errors",
    "sram_correctable": "SRAM Correctable",
    "sram_uncorrectable": "SRAM Uncorrectable",
    "dram_correctable": "DRAM Correctable",
    "dram_uncorrectable": "DRAM Uncorrectable",
    "retired_pages": "Retired Pages",
    "multiple_single_bit_retirement": "Single Bit ECC",
    "double_bit_retirement": "Double Bit ECC",
    "pending_blacklist": "Pending Page Blacklist",
    "remapped_rows": "Remapped Rows",
    "remapped_row_corr": "Correctable Error",
    "remapped_row_unc": "Uncorrectable Error",
    "remapped_row_pending": "Pending",
    "remapped_row_failure": "Remapping Failure Occurred",
    "row_remapper_histogram": "Bank Remap Availability Histogram",
    "temperature": "Temperature",
    "gpu_temp": "GPU Current Temp",
    "gpu_temp_tlimit": "GPU T.Limit Temp",
    "gpu_temp_max_threshold": "GPU Shutdown Temp",
    "gpu_temp_slow_threshold": "GPU Slowdown Temp",
    "gpu_temp_max_gpu_threshold": "GPU Max Operating Temp",
    "gpu_target_temperature": "GPU Target Temperature",
    "memory_temp": "Memory Current Temp",
    "gpu_temp_max_mem_threshold": "Memory Max Operating Temp",
    "gpu_power_readings": "GPU Power Readings",
    "power_draw": "Power Draw",
    "current_power_limit": "Current Power Limit",
    "requested_power_limit": "Requested Power Limit",
    "default_power_limit": "Default Power Limit",
    "min_power_limit": "Min Power Limit",
    "max_power_limit": "Max Power Limit",
    "clocks": "Clocks",
    "graphics_clock": "Graphics",
    "sm_clock": "SM",
    "mem_clock": "Memory",
    "video_clock": "Video",
    "max_clocks": "Max Clocks",
    "fabric": "Fabric",
    "state": "State",
    "status": "Status",
    "processes": "Processes",
}
_HEX = {"pci_bus", "pci_device", "pci_domain", "pci_device_id", "pci_sub_system_id"}
_SKIP = {"pending_retirement", "accounted_processes", "power_state"}


def _label(tag: str) -> str:
    if tag in _LABELS:
        return _LABELS[tag]
    if tag.startswith(("current_", "pending_")) and tag.count("_") == 1:
        return tag.split("_")[0].title()
    if tag.startswith("row_remapper_histogram_"):
        return tag.rsplit("_", 1)[1].title()
    return tag.replace("_", " ").title()


def render_query_text(xml_text: str) -> str:
    """``nvidia-smi -q``: the ``-q -x`` document in the text layout (``Label : value``, the
    colon in column 43, four spaces per level), with nvidia-smi's own labels."""
    root = ET.fromstring(xml_text.split("-->\n", 1)[1])
    lines = ["", "==============NVSMI LOG==============", ""]

    def leaf(pad: str, tag: str, value: str) -> None:
        if tag in _HEX:
            value = "0x" + value
        lines.append(f"{pad + _label(tag):<42}: {value.strip() or 'None'}")

    def walk(node: ET.Element, depth: int) -> None:
        pad = "    " * depth
        for child in node:
            if child.tag in _SKIP:
                continue
            if child.tag == "gpu":
                lines.append(f"GPU {child.get('id')}")
                walk(child, 1)
            elif child.tag.endswith("_retirement"):
                leaf(pad, child.tag, child.findtext("retired_count") or "N/A")
            elif len(child):
                lines.append(f"{pad}{_label(child.tag)}")
                walk(child, depth + 1)
            else:
                if child.tag == "attached_gpus":
                    lines.append("")
                leaf(pad, child.tag, child.text or "")

    walk(root, 0)
    return "\n".join(lines) + "\n"
