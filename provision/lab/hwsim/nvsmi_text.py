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
    return (f"NVIDIA-SMI version  : {facts.driver_version}\n"
            f"NVML version        : {nvml}\n"
            f"DRIVER version      : {facts.driver_version}\n"
            f"CUDA Version        : {facts.cuda_version}\n"
            f"Simulated by        : {LABEL}\n")


def render_table(facts: Personality, gpus: list[GpuView], at: float) -> str:
    """The default ``nvidia-smi`` table."""
    rule = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"
    wide = "+" + "-" * 89 + "+"
    lines = [time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(at)) + "       ", wide,
             f"| NVIDIA-SMI {facts.driver_version:<23}Driver Version: "
             f"{facts.driver_version:<15}CUDA Version: {facts.cuda_version:<9}|",
             rule.replace("+", "|", 1)[:-1] + "|",
             "| GPU  Name                 Persistence-M | Bus-Id          Disp.A "
             "| Volatile Uncorr. ECC |",
             "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage "
             "| GPU-Util  Compute M. |",
             "|" + " " * 41 + "|" + " " * 24 + "|" + f"{'MIG M.':>21} |",
             "|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|"]
    for g in gpus:
        name = g.name if len(g.name) <= 31 else g.name[:28] + "..."
        lines.append(f"|{g.index:>4}  {name:<31}On  |{g.bus_id:>19} Off |"
                     f"{g.ecc_dram_uncorrected:>21} |")
        power = f"{round(g.power_draw)}W / {g.power_limit:>4}W"
        lines.append(f"| N/A {g.temp_gpu:>4}C    P0{power:>24} |"
                     f"{g.memory_used:>8}MiB / {g.memory_total:>6}MiB |"
                     f"{0:>7}%{'Default':>13} |")
        lines.append("|" + " " * 41 + "|" + " " * 24 + "|" + f"{'Disabled':>21} |")
        lines.append(rule)
    lines += ["", wide, f"| {'Processes:':<88}|",
              f"| {' GPU   GI   CI              PID   Type   Process name':<77}"
              f"{'GPU Memory':<11}|",
              f"| {'       ID   ID':<77}{'Usage':<11}|",
              "|" + "=" * 89 + "|",
              f"| {' No running processes found':<88}|", wide]
    return "\n".join(lines) + "\n"


def render_query_text(xml_text: str) -> str:
    """``nvidia-smi -q``: the ``-q -x`` document shown as indented ``Label : value`` lines."""
    root = ET.fromstring(xml_text.split("-->\n", 1)[1])
    lines = ["", "==============NVSMI LOG==============", ""]

    def label(tag: str) -> str:
        return tag.replace("_", " ").title().replace("Gpu", "GPU").replace("Pci", "PCI")

    def walk(node: ET.Element, depth: int) -> None:
        for child in node:
            pad = "    " * depth
            if child.tag == "gpu":
                lines.extend(["", f"GPU {child.get('id')}"])
                walk(child, 1)
            elif len(child):
                lines.append(f"{pad}{label(child.tag)}")
                walk(child, depth + 1)
            else:
                key = f"{pad}{label(child.tag)}"
                lines.append(f"{key:<44}: {(child.text or '').strip() or 'None'}")

    walk(root, 0)
    return "\n".join(lines) + "\n"
