"""Hardware catalog types: node, switch, cable and transceiver SKUs (data in provision/catalog/)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt

from provision.models.base import StrictModel

LinkSpeed = Literal["EDR", "HDR", "NDR", "XDR"]
"""InfiniBand generations by per-port signalling name."""

SPEED_GBPS: dict[str, int] = {"EDR": 100, "HDR": 200, "NDR": 400, "XDR": 800}
"""Line rate of a 4x port per generation, Gb/s."""

GpuGeneration = Literal["ampere", "hopper", "blackwell"]

PsuInlet = Literal["c14", "c20", "hardwired"]
"""Power inlet of a device's PSUs: IEC C14 (takes a PDU's C13 outlet, up to 10 A), C20 (a C19
outlet, up to 16 A), or hardwired (fed by its own whips or a busbar, no PDU outlet)."""

_PSUS = "Power supplies (each cabled to a PDU outlet; the planner spreads them over the A and B feeds)."
_PSU_KW = ("Output rating of one PSU, kW. With it lint checks that the PSUs on one feed "
           "carry max_power_kw (GPU110: on a feed loss the node is power-capped).")
_INLET = ("Inlet of each PSU: c14 (C13 outlet), c20 (C19 outlet) or hardwired (its own feed, no "
          "PDU outlet).")


class Hca(StrictModel):
    """One compute-fabric host channel adapter port on a node."""

    device: str = Field(description="RDMA device name as the OS sees it, e.g. mlx5_0.")
    speed: LinkSpeed = Field(description="Highest InfiniBand generation the port runs at.")
    pcie_gen: int = Field(default=5, ge=3, le=6, description="PCIe generation of the HCA slot.")
    cage: int | None = Field(
        default=None, ge=1, description="Chassis cage the port sits in when several ports "
        "share one (DGX OSFP twin-port cages): ports with the same number take one twin-port "
        "module. Unset: the port is its own single-port cage (a ConnectX card).")
    label: str | None = Field(
        default=None, min_length=1, description="The port as printed on the chassis, e.g. "
        "OSFP4P2 (a crew reads the label, the OS reads the device name).")


class NodeType(StrictModel):
    """A server SKU: GPUs, compute HCAs, other NICs, power and size.

    GPU and compute-HCA facts are optional: a storage, service or head node has no GPUs and
    names none (``gpus`` 0, no ``gpu_*`` fields, no ``compute_hcas``). What a node has
    decides what is provisioned and tested on it: the NVIDIA stack and GPU burn-in only
    where it has GPUs, the InfiniBand stack only where it has compute HCAs.
    """

    name: str = Field(description="Catalog key, e.g. dgx-h100; referenced by node groups.")
    vendor: str = Field(description="Manufacturer, e.g. NVIDIA or Supermicro.")
    model: str = Field(description="Marketing model name, e.g. DGX H100.")
    gpus: int = Field(default=0, ge=0, le=72,
                      description="GPUs per node (per rack for NVL72 racks); 0 for a node "
                      "without GPUs (storage, service, head).")
    gpu_model: str | None = Field(default=None, description="GPU product name as nvidia-smi "
                                  "prints it; only with gpus > 0.")
    gpu_generation: GpuGeneration | None = Field(default=None, description="GPU architecture "
                                                 "generation; only with gpus > 0.")
    gpu_memory_gib: int = Field(default=0, ge=0, description="Memory per GPU in GiB; only "
                                "with gpus > 0.")
    nvswitch: bool = Field(default=False, description="GPUs are joined by NVSwitch (needs "
                           "Fabric Manager or IMEX).")
    form_factor: Literal["sxm", "pcie", "nvl-rack"] | None = Field(
        default=None, description="GPU form factor; only with gpus > 0.")
    compute_hcas: list[Hca] = Field(default_factory=list, description="Compute-fabric HCA "
                                    "ports, rail order; none for a node off the compute "
                                    "fabric.")
    storage_nics: int = Field(ge=0, description="Ports facing the storage fabric.")
    storage_nic_gbps: int = Field(ge=0, description="Speed of each storage port, Gb/s.")
    inband_nics: int = Field(ge=0, description="Ports facing the in-band management network.")
    inband_nic_gbps: int = Field(ge=0, description="Speed of each in-band port, Gb/s.")
    bmc: bool = Field(default=True, description="Has a Redfish-capable BMC on the OOB network.")
    max_power_kw: PositiveFloat = Field(description="Nameplate maximum power draw, kW.")
    typical_power_kw: PositiveFloat = Field(description="Expected draw under training load, kW.")
    rack_units: PositiveInt = Field(description="Height in rack units (U).")
    liquid_cooled: bool = Field(default=False, description="Requires direct liquid cooling.")
    psus: PositiveInt = Field(default=2, description=_PSUS)
    psu_inlet: PsuInlet = Field(default="c14", description=_INLET)
    psu_kw: PositiveFloat | None = Field(default=None, description=_PSU_KW)


class SwitchType(StrictModel):
    """A switch SKU."""

    name: str = Field(description="Catalog key, e.g. qm9700.")
    vendor: str = Field(description="Manufacturer.")
    model: str = Field(description="Model name.")
    technology: Literal["infiniband", "ethernet"] = Field(description="Fabric technology.")
    ports: PositiveInt = Field(description="Logical ports at the nominal speed (the radix).")
    cages: PositiveInt = Field(description="Physical cages on the front panel.")
    ports_per_cage: PositiveInt = Field(description="Logical ports carried by one cage.")
    speed_gbps: PositiveInt = Field(description="Nominal speed of one logical port, Gb/s.")
    ib_speed: LinkSpeed | None = Field(default=None, description="IB generation, IB switches only.")
    max_power_kw: PositiveFloat = Field(description="Maximum power draw, kW.")
    typical_power_kw: PositiveFloat = Field(description="Typical power draw, kW.")
    rack_units: PositiveInt = Field(description="Height in rack units (U).")
    psus: PositiveInt = Field(default=2, description=_PSUS)
    psu_inlet: PsuInlet = Field(default="c14", description=_INLET)


class CableType(StrictModel):
    """A cable or optic+fiber option for a given speed and reach."""

    name: str = Field(description="Catalog key / SKU, e.g. dac-ndr-osfp.")
    medium: Literal["dac", "acc", "aoc", "fiber-mm", "fiber-sm", "copper-rj45"] = Field(
        description="Physical medium: passive copper, active copper, active optical, fiber, RJ45."
    )
    speed_gbps: PositiveInt = Field(description="Speed the cable carries, Gb/s.")
    technology: Literal["infiniband", "ethernet"] = Field(description="Fabric technology.")
    max_length_m: PositiveFloat = Field(description="Longest supported length, meters.")
    lengths_m: list[PositiveFloat] = Field(description="Purchasable lengths, meters, ascending.")
    transceiver: str | None = Field(
        default=None,
        description="Switch-side transceiver SKU when the medium is fiber (twin-port optics "
        "carry two links per module).",
    )
    host_transceiver: str | None = Field(
        default=None, description="Host (NIC) side transceiver SKU when the medium is fiber."
    )
    legs: int = Field(
        default=1, ge=1, le=4, description="Single-port ends of a splitter cable (2: one "
        "twin-port plug to two single-port plugs, e.g. to two ConnectX-7); 1: a straight "
        "cable, cage to cage.")
    host_twin_transceiver: str | None = Field(
        default=None, description="Transceiver for a host's twin-port cage (DGX system "
        "cages, flat-top) when the medium is fiber; defaults to transceiver.")


class TransceiverType(StrictModel):
    """An optical transceiver SKU."""

    name: str = Field(description="Catalog key / SKU, e.g. osfp-2x400g-sr8.")
    form_factor: str = Field(description="OSFP, QSFP56, QSFP112, ...")
    ports: PositiveInt = Field(description="Logical ports it carries (2 for twin-port OSFP).")
    speed_gbps: PositiveInt = Field(description="Speed per logical port, Gb/s.")
    reach_m: PositiveFloat = Field(description="Maximum reach, meters.")
    fiber: Literal["mm", "sm"] = Field(description="Multimode or single-mode fiber.")


class ApplianceType(StrictModel):
    """A rack-mounted appliance that is neither a compute node nor a switch (e.g. UFM)."""

    name: str = Field(description="Catalog key, e.g. ufm-appliance.")
    vendor: str = Field(description="Manufacturer.")
    model: str = Field(description="Model name.")
    role: Literal["ufm"] = Field(description="What the planner uses it for: ufm = the "
                                 "compute fabric's subnet manager / fabric manager.")
    max_power_kw: PositiveFloat = Field(description="Nameplate maximum power draw, kW.")
    typical_power_kw: PositiveFloat = Field(description="Typical power draw, kW.")
    rack_units: PositiveInt = Field(description="Height in rack units (U).")
    psus: PositiveInt = Field(default=2, description=_PSUS)
    psu_inlet: PsuInlet = Field(default="c14", description=_INLET)


class PduType(StrictModel):
    """A rack PDU: one per feed side at least (two per rack: A and B, each able to carry the
    rack alone)."""

    name: str = Field(description="Catalog key, e.g. pdu-3ph-415v-63a.")
    vendor: str = Field(description="Manufacturer.")
    model: str = Field(description="Model name.")
    phases: Literal[1, 3] = Field(description="Input phases: 1 or 3.")
    voltage_v: PositiveInt = Field(description="Input voltage, V (line-to-line for 3-phase).")
    current_a: PositiveFloat = Field(description="Rated input current per phase, A.")
    feed_kw: PositiveFloat = Field(description="Continuous power it delivers, kW (after any "
                                   "derating its circuit needs, e.g. 80 % in North America).")
    outlets_c13: int = Field(ge=0, description="IEC C13 outlets (for C14 PSU inlets, <= 10 A).")
    outlets_c19: int = Field(ge=0, description="IEC C19 outlets (for C20 PSU inlets, <= 16 A).")
    rack_units: int = Field(default=0, ge=0, description="Height in rack units (0: vertical, "
                            "in the rack's rear channel).")


class Catalog(StrictModel):
    """All hardware SKUs known to a site: built-ins plus the site's own catalog files."""

    nodes: dict[str, NodeType] = Field(default_factory=dict, description="Node SKUs by name.")
    switches: dict[str, SwitchType] = Field(default_factory=dict, description="Switch SKUs.")
    cables: dict[str, CableType] = Field(default_factory=dict, description="Cable SKUs.")
    transceivers: dict[str, TransceiverType] = Field(
        default_factory=dict, description="Transceiver SKUs."
    )
    appliances: dict[str, ApplianceType] = Field(
        default_factory=dict, description="Appliance SKUs (UFM, ...)."
    )
    pdus: dict[str, PduType] = Field(default_factory=dict, description="Rack PDU SKUs.")
