"""``nvidia-smi -q -x``: the nvsmi_device_v12 XML document, built with ElementTree.

The simulator label is an XML comment between the DOCTYPE and the root element, where any XML
parser skips it (real nvidia-smi output carries a DOCTYPE there too).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from provision.lab.hwsim.nvsmi_data import GpuView
from provision.lab.hwsim.personality import LABEL, Personality

Tree = list[tuple[str, "str | Tree"]]


def _build(parent: ET.Element, items: Tree) -> None:
    for tag, value in items:
        child = ET.SubElement(parent, tag)
        if isinstance(value, str):
            child.text = value
        else:
            _build(child, value)


def _yn(flag: bool) -> str:
    return "Yes" if flag else "No"


def _gpu_tree(g: GpuView) -> Tree:
    na = "N/A"
    ecc_counts: Tree = [
        ("sram_correctable", "0"),
        ("sram_uncorrectable", "0"),
        ("dram_correctable", str(g.ecc_dram_corrected)),
        ("dram_uncorrectable", str(g.ecc_dram_uncorrected)),
    ]
    pci_bus = g.bus_id.split(":")[1]
    return [
        ("product_name", g.name),
        ("product_brand", "NVIDIA"),
        ("product_architecture", g.architecture),
        ("display_mode", "Disabled"),
        ("display_active", "Disabled"),
        ("persistence_mode", "Enabled"),
        ("addressing_mode", "None"),
        ("mig_mode", [("current_mig", "Disabled"), ("pending_mig", "Disabled")]),
        ("mig_devices", "None"),
        ("accounting_mode", "Disabled"),
        ("accounting_mode_buffer_size", "4000"),
        ("driver_model", [("current_dm", na), ("pending_dm", na)]),
        ("serial", g.serial),
        ("uuid", g.uuid),
        ("minor_number", str(g.slot)),
        ("vbios_version", g.vbios),
        ("multigpu_board", "No"),
        ("board_id", f"0x{pci_bus}00"),
        ("board_part_number", g.board_part),
        ("gpu_part_number", f"{g.pci_device_id[:4]}-886-A1"),
        ("gpu_fru_part_number", na),
        ("gpu_module_id", str(g.slot + 1)),
        (
            "inforom_version",
            [
                ("img_version", g.inforom_img),
                ("oem_object", "2.1"),
                ("ecc_object", "7.16"),
                ("pwr_object", na),
            ],
        ),
        ("gpu_operation_mode", [("current_gom", na), ("pending_gom", na)]),
        ("gpu_virtualization_mode", [("virtualization_mode", "None"), ("host_vgpu_mode", na)]),
        ("gpu_reset_status", [("reset_required", "No"), ("drain_and_reset_recommended", "No")]),
        (
            "pci",
            [
                ("pci_bus", pci_bus),
                ("pci_device", "00"),
                ("pci_domain", "0000"),
                ("pci_device_id", g.pci_device_id),
                ("pci_bus_id", g.bus_id),
                ("pci_sub_system_id", g.pci_sub_system_id),
                (
                    "pci_gpu_link_info",
                    [
                        (
                            "pcie_gen",
                            [
                                ("max_link_gen", str(g.pcie_gen)),
                                ("current_link_gen", str(g.pcie_gen)),
                                ("device_current_link_gen", str(g.pcie_gen)),
                                ("max_device_link_gen", str(g.pcie_gen)),
                                ("max_host_link_gen", str(g.pcie_gen)),
                            ],
                        ),
                        ("link_widths", [("max_link_width", "16x"), ("current_link_width", "16x")]),
                    ],
                ),
                ("replay_counter", "0"),
                ("replay_rollover_counter", "0"),
                ("tx_util", "0 KB/s"),
                ("rx_util", "0 KB/s"),
            ],
        ),
        ("fan_speed", na),
        ("performance_state", "P0"),
        (
            "fb_memory_usage",
            [
                ("total", f"{g.memory_total} MiB"),
                ("reserved", f"{g.memory_reserved} MiB"),
                ("used", f"{g.memory_used} MiB"),
                ("free", f"{g.memory_free} MiB"),
            ],
        ),
        ("bar1_memory_usage", [("total", "131072 MiB"), ("used", "1 MiB"), ("free", "131071 MiB")]),
        ("compute_mode", "Default"),
        (
            "utilization",
            [
                ("gpu_util", "0 %"),
                ("memory_util", "0 %"),
                ("encoder_util", "0 %"),
                ("decoder_util", "0 %"),
            ],
        ),
        ("ecc_mode", [("current_ecc", "Enabled"), ("pending_ecc", "Enabled")]),
        ("ecc_errors", [("volatile", ecc_counts), ("aggregate", ecc_counts)]),
        (
            "retired_pages",
            [
                (
                    "multiple_single_bit_retirement",
                    [("retired_count", na), ("retired_pagelist", na)],
                ),
                ("double_bit_retirement", [("retired_count", na), ("retired_pagelist", na)]),
                ("pending_blacklist", na),
                ("pending_retirement", na),
            ],
        ),
        (
            "remapped_rows",
            [
                ("remapped_row_corr", "0"),
                ("remapped_row_unc", str(g.remapped_unc)),
                ("remapped_row_pending", _yn(g.remap_pending)),
                ("remapped_row_failure", "No"),
                (
                    "row_remapper_histogram",
                    [
                        (
                            "row_remapper_histogram_max",
                            f"{2559 if g.remapped_unc else 2560} bank(s)",
                        ),
                        ("row_remapper_histogram_high", f"{1 if g.remapped_unc else 0} bank(s)"),
                        ("row_remapper_histogram_partial", "0 bank(s)"),
                        ("row_remapper_histogram_low", "0 bank(s)"),
                        ("row_remapper_histogram_none", "0 bank(s)"),
                    ],
                ),
            ],
        ),
        (
            "temperature",
            [
                ("gpu_temp", f"{g.temp_gpu} C"),
                ("gpu_temp_tlimit", na),
                ("gpu_temp_max_threshold", "92 C"),
                ("gpu_temp_slow_threshold", "89 C"),
                ("gpu_temp_max_gpu_threshold", "87 C"),
                ("gpu_target_temperature", na),
                ("memory_temp", f"{g.temp_mem} C"),
                ("gpu_temp_max_mem_threshold", "95 C"),
            ],
        ),
        (
            "gpu_power_readings",
            [
                ("power_state", "P0"),
                ("power_draw", f"{g.power_draw:.2f} W"),
                ("current_power_limit", f"{g.power_limit:.2f} W"),
                ("requested_power_limit", f"{g.power_limit:.2f} W"),
                ("default_power_limit", f"{g.power_limit:.2f} W"),
                ("min_power_limit", "200.00 W"),
                ("max_power_limit", f"{g.power_limit:.2f} W"),
            ],
        ),
        (
            "clocks",
            [
                ("graphics_clock", f"{g.clock_graphics} MHz"),
                ("sm_clock", f"{g.clock_graphics} MHz"),
                ("mem_clock", f"{g.clock_mem} MHz"),
                ("video_clock", "765 MHz"),
            ],
        ),
        (
            "max_clocks",
            [
                ("graphics_clock", f"{g.max_graphics} MHz"),
                ("sm_clock", f"{g.max_graphics} MHz"),
                ("mem_clock", f"{g.max_mem} MHz"),
                ("video_clock", "1755 MHz"),
            ],
        ),
        ("fabric", [("state", "Completed"), ("status", "Success")]),
        ("processes", ""),
        ("accounted_processes", ""),
    ]


def render_xml(facts: Personality, gpus: list[GpuView], at: float) -> str:
    """The whole ``nvidia-smi -q -x`` document for ``gpus``."""
    root = ET.Element("nvidia_smi_log")
    _build(
        root,
        [
            ("timestamp", time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(at))),
            ("driver_version", facts.driver_version),
            ("cuda_version", facts.cuda_version),
            ("attached_gpus", str(len(gpus))),
        ],
    )
    for g in gpus:
        node = ET.SubElement(root, "gpu", {"id": g.bus_id})
        _build(node, _gpu_tree(g))
    ET.indent(root, space="\t")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    head = (
        '<?xml version="1.0" ?>\n'
        '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n'
        f"<!-- {LABEL} -->\n"
    )
    return head + body + "\n"
