"""The per-GPU values every simulated nvidia-smi output (XML, CSV, text) is rendered from.

Computed once from the host's personality and faults so that ``-q -x``, ``--query-gpu`` and
``nvlink -s`` always agree with each other. Idle values get small per-host jitter, seeded by the
host name and GPU slot, so repeated runs print the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.lab.hwsim.personality import gpu_bus_id, gpu_serial, gpu_uuid, rng
from provision.lab.hwsim.state import HostState


@dataclass(frozen=True)
class GpuView:
    """One GPU as nvidia-smi shows it. ``index`` is the driver's (renumbered) index,
    ``slot`` the physical position that fault parameters name."""

    index: int
    slot: int
    name: str
    architecture: str
    uuid: str
    serial: str
    bus_id: str
    pci_device_id: str
    pci_sub_system_id: str
    vbios: str
    board_part: str
    inforom_img: str
    compute_cap: str
    pcie_gen: int
    memory_total: int
    memory_reserved: int
    memory_used: int
    temp_gpu: int
    temp_mem: int
    power_draw: float
    power_limit: int
    clock_graphics: int
    clock_mem: int
    max_graphics: int
    max_mem: int
    ecc_dram_uncorrected: int
    ecc_dram_corrected: int
    remapped_unc: int
    remap_pending: bool
    nvlink_gbps: tuple[float, ...]
    nvlink_inactive: bool

    @property
    def memory_free(self) -> int:
        return self.memory_total - self.memory_reserved - self.memory_used

    @property
    def bus_short(self) -> str:
        """``0000:18:00`` as nccl-tests and the kernel log print it."""
        return self.bus_id[4:-2].lower()


def gpu_views(state: HostState) -> list[GpuView]:
    """The GPUs the simulated driver sees on this host, in index order."""
    facts = state.facts
    prod = state.product
    views = []
    for index, slot in enumerate(state.gpus()):
        r = rng(state.host, "gpu", slot)
        ecc = slot in state.ecc_gpus()
        unc = r.randint(1, 4) if ecc else 0
        down = state.nvlink_down(slot)
        views.append(
            GpuView(
                index=index,
                slot=slot,
                name=facts.gpu_product,
                architecture=prod.architecture,
                uuid=gpu_uuid(state.host, slot),
                serial=gpu_serial(state.host, slot),
                bus_id=gpu_bus_id(slot),
                pci_device_id=prod.pci_device_id,
                pci_sub_system_id=prod.pci_sub_system_id,
                vbios=facts.vbios_version,
                board_part=prod.board_part,
                inforom_img=prod.inforom_img,
                compute_cap=prod.compute_cap,
                pcie_gen=prod.pcie_gen,
                memory_total=facts.gpu_memory_mib,
                memory_reserved=round(facts.gpu_memory_mib * 0.00587),
                memory_used=0,
                temp_gpu=r.randint(27, 36),
                temp_mem=r.randint(29, 40),
                power_draw=round(prod.idle_power_w + r.uniform(-3.0, 4.0), 2),
                power_limit=prod.power_limit_w,
                clock_graphics=345,
                clock_mem=prod.max_mem_mhz,
                max_graphics=prod.max_graphics_mhz,
                max_mem=prod.max_mem_mhz,
                ecc_dram_uncorrected=unc,
                ecc_dram_corrected=0,
                remapped_unc=1 if ecc else 0,
                remap_pending=ecc,
                nvlink_gbps=() if down else tuple([prod.nvlink_gbps] * prod.nvlink_links),
                nvlink_inactive=down,
            )
        )
    return views
