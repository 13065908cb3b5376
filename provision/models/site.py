"""The declarative site model: what the user writes in inventory/sites/<site>/site.yaml."""

from __future__ import annotations

import string
from typing import Annotated, Literal

import netaddr
from pydantic import (
    AfterValidator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from provision.models.base import StrictModel

Name = Annotated[
    str,
    Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=40),
]
"""A DNS-label-like name: lower case letters, digits and inner dashes."""


def _network(value: str) -> str:
    try:
        net = netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise ValueError(f"not an IP network: {value!r}") from exc
    if net.version != 4:
        raise ValueError(f"only IPv4 pools are supported, got {value!r}")
    if net.ip != net.network:
        raise ValueError(f"{value!r} has host bits set; did you mean {net.cidr}?")
    return str(net.cidr)


Cidr = Annotated[str, AfterValidator(_network)]
"""An IPv4 network in CIDR notation, validated with netaddr."""

HOSTNAME_FIELDS = frozenset({"group", "index", "rack", "slot", "hall", "row"})
RACK_NAME_FIELDS = frozenset({"hall", "row", "index"})
_SAMPLE: dict[str, str | int] = {"group": "gpu", "index": 1, "rack": "a01", "slot": 1,
                                 "hall": "h1", "row": "a"}


def _pattern_error(what: str, value: str, problem: str, hint: str) -> PydanticCustomError:
    # Code GPU133 (provision/plan/lint.py); the loader turns the type into the finding's code.
    return PydanticCustomError("GPU133", "{message}",
                               {"message": f"{what} pattern {value!r} {problem}", "hint": hint})


def _check_pattern(value: str, what: str, allowed: frozenset[str]) -> list[str]:
    """Fields of a name pattern; raise GPU133 unless ``str.format`` can fill it for every name."""
    names = ", ".join("{" + f + "}" for f in sorted(allowed))
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise _pattern_error(what, value, f"is not a format pattern: {exc}",
                             "write literal braces as {{ and }}") from exc
    fields = []
    for _, name, _spec, _conv in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise _pattern_error(what, value, "has a positional field {}", f"name it: {names}")
        if not name.isidentifier():
            raise _pattern_error(what, value, f"uses {{{name}}}; only plain fields are allowed",
                                 f"use {names}, with a format such as {{index:03d}}")
        if name not in allowed:
            raise _pattern_error(what, value, f"uses unknown field {{{name}}}",
                                 f"allowed: {names}")
        fields.append(name)
    try:
        value.format(**_SAMPLE)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise _pattern_error(what, value, f"cannot be filled in: {exc}",
                             "{index} and {slot} are numbers (e.g. {index:04d}); the other "
                             "fields are text (e.g. {row})") from exc
    return fields


def _hostname_pattern(value: str) -> str:
    fields = _check_pattern(value, "hostname", HOSTNAME_FIELDS)
    if "index" not in fields and not {"rack", "slot"} <= set(fields):
        raise _pattern_error("hostname", value, "must contain {index} or both {rack} and "
                             "{slot}", "so that every node gets a distinct name")
    return value


def _rack_names_pattern(value: str) -> str:
    _check_pattern(value, "rack_names", RACK_NAME_FIELDS)
    return value


class SiteInfo(StrictModel):
    """Facility-level facts."""

    name: Name = Field(description="Site name; also the directory name under inventory/sites/.")
    location: str = Field(description="Where the site is, e.g. 'Ulanqab, Inner Mongolia'.")
    climate: Literal["cold", "temperate", "hot"] = Field(
        description="Climate class; drives the realistic PUE range and free-cooling hours."
    )
    power_capacity_mw: PositiveFloat = Field(description="Utility power available to IT + facility, MW.")
    pue_target: float = Field(ge=1.0, le=3.0, description="Design PUE (facility / IT energy).")
    electricity_price_per_kwh: NonNegativeFloat = Field(description="Energy price per kWh.")
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code.")
    domain: str = Field(
        default="cluster.internal",
        pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
        description="DNS domain the site's hosts live in.",
    )


class RackSpec(StrictModel):
    """What every rack of a row looks like."""

    size_u: int = Field(default=48, ge=1, le=60, description="Usable height in rack units.")
    power_kw: PositiveFloat = Field(description="Power budget per rack, kW.")
    cooling: Literal["air", "liquid", "hybrid"] = Field(description="How the rack is cooled.")
    pdus: int = Field(default=2, ge=0, le=8, description="PDUs per rack, alternately on "
                      "the rack's A and B feeds (2: one per feed); each feed's PDUs must carry "
                      "the whole rack alone (N+N).")
    pdu: str = Field(default="pdu-3ph-415v-63a", description="Catalog PDU (pdus:) of every "
                     "PDU of the rack: its feed kW and C13/C19 outlets are checked against "
                     "the rack's load and PSUs.")


class Row(StrictModel):
    """A row of identical racks on the hall floor."""

    name: Name = Field(description="Row name, unique within its hall, e.g. 'a'.")
    racks: PositiveInt = Field(le=1000, description="Number of racks in the row.")
    rack: RackSpec = Field(description="The spec shared by every rack of the row.")
    y_m: float = Field(description="Floor position of the row along the hall's depth, meters.")
    x_m: float = Field(default=0.0, description="Floor position of the row's first rack, meters.")
    rack_pitch_m: PositiveFloat = Field(default=0.6, description="Rack width incl. gaps, meters.")
    rack_names: Annotated[str, AfterValidator(_rack_names_pattern)] = Field(
        default="{row}{index:02d}",
        description="Rack name pattern; fields {hall}, {row}, {index} (1-based).",
    )


class Hall(StrictModel):
    """A data hall: rows of racks sharing power and cooling plant."""

    name: Name = Field(description="Hall name, unique in the site.")
    power_capacity_kw: PositiveFloat = Field(description="IT power the hall's plant can deliver, kW.")
    x_m: float = Field(default=0.0, description="Hall origin on the campus plan, meters.")
    y_m: float = Field(default=0.0, description="Hall origin on the campus plan, meters.")
    rows: list[Row] = Field(min_length=1, description="Rows of racks in this hall.")


class Placement(StrictModel):
    """Where a node group's nodes go."""

    hall: Name = Field(description="Hall the nodes go in.")
    rows: list[Name] = Field(min_length=1, description="Rows filled in this order, rack by rack.")
    nodes_per_rack: PositiveInt = Field(description="Nodes placed in each rack.")
    u_positions: list[PositiveInt] = Field(
        description="Lowest rack unit of each node slot, one per node in a rack."
    )
    first_rack: PositiveInt = Field(
        default=1, description="1-based index of the first rack used in the first row."
    )

    @model_validator(mode="after")
    def _slots_match(self) -> Placement:
        if len(self.u_positions) != self.nodes_per_rack:
            raise ValueError(
                f"u_positions lists {len(self.u_positions)} slots but nodes_per_rack is "
                f"{self.nodes_per_rack}"
            )
        if len(set(self.u_positions)) != len(self.u_positions):
            raise ValueError("u_positions has duplicate rack units")
        return self


class NodeGroup(StrictModel):
    """A set of identical nodes with one role."""

    name: Name = Field(description="Group name, also an Ansible group.")
    type: str = Field(description="Catalog node type, e.g. dgx-h100.")
    role: Literal["gpu", "storage", "mgmt", "head"] = Field(
        default="gpu", description="What the nodes are for: gpu (compute; needs a node type "
        "with GPUs), storage (never a Kubernetes node), mgmt or head. The node type's "
        "hardware decides the NVIDIA and InfiniBand stacks and GPU burn-in "
        "(docs/roles.md).")
    count: PositiveInt = Field(description="Number of nodes.")
    placement: Placement = Field(description="Where the nodes go.")
    hostname: Annotated[str, AfterValidator(_hostname_pattern)] = Field(
        default="{group}-{index:04d}",
        description="Hostname pattern; fields {group} {index} {rack} {slot} {hall} {row}.",
    )
    bmc_interface: str = Field(default="bmc", description="Name of the BMC port (OOB network).")
    boot_interface: str = Field(
        default="eno1", description="In-band interface that PXE boots and carries management."
    )
    boot_mode: Literal["pxe", "virtual-media"] = Field(
        default="pxe", description="How the image phase boots the installer."
    )
    image: Name | None = Field(
        default=None,
        description="Name of the images: entry this group boots; default: software.os from "
        "its public mirror (gpuctl image build).",
    )


class DesignCapacity(StrictModel):
    """The size a fabric is built out to: scalable units (rail-optimized) or endpoints."""

    sus: PositiveInt | None = Field(default=None, description="Scalable units at the final size.")
    endpoints: PositiveInt | None = Field(
        default=None, description="HCA ports (UFM ports included) at the final size.")

    @model_validator(mode="after")
    def _one(self) -> DesignCapacity:
        if (self.sus is None) == (self.endpoints is None):
            raise ValueError("give exactly one of design.sus and design.endpoints")
        return self


class ComputeFabric(StrictModel):
    """The InfiniBand compute (east-west GPU) fabric."""

    topology: Literal["rail-optimized", "multi-plane", "fat-tree"] = Field(
        description="rail-optimized (SuperPOD SUs), multi-plane (one plane per NIC), fat-tree."
    )
    switch: str = Field(description="Catalog switch type for every tier, e.g. qm9700.")
    speed: Literal["EDR", "HDR", "NDR", "XDR"] = Field(description="Link speed of the fabric.")
    node_groups: list[Name] = Field(min_length=1, description="Node groups attached, in order.")
    tiers: Literal["auto", 2, 3] = Field(
        default="auto", description="Switch tiers; auto picks the fewest that fit."
    )
    su_size: PositiveInt = Field(
        default=32, description="rail-optimized: node slots per scalable unit."
    )
    ufm_ports: int = Field(
        default=4, ge=0, description="rail-optimized: leaf ports reserved for the UFM appliance."
    )
    ufm_appliance: str = Field(
        default="ufm-appliance",
        description="Catalog appliance (appliances:) racked as the UFM when ufm_ports > 0.",
    )
    planes: PositiveInt = Field(
        default=1, description="multi-plane: independent planes (one NIC of each node per plane)."
    )
    oversubscription: float = Field(
        default=1.0, ge=1.0, le=16.0,
        description="Leaf downlink:uplink bandwidth ratio (1.0 = non-blocking; 3.0 means 3:1).",
    )
    network_racks: list[str] = Field(
        default_factory=list,
        description="Racks that hold this fabric's switches, filled in order (leaves, spines, cores).",
    )
    ipoib_pkey: str = Field(default="0x7fff", pattern=r"^0x[0-9a-fA-F]{1,4}$",
                            description="Partition key for IPoIB.")
    design: DesignCapacity | None = Field(
        default=None,
        description="Final size of the fabric: leaves, spines and cores (rack space, power, "
                    "addresses, cables) are planned for it; what is not needed yet is future.",
    )

    @model_validator(mode="after")
    def _design_fits_topology(self) -> ComputeFabric:
        if self.design is not None and self.design.sus and self.topology != "rail-optimized":
            raise ValueError(f"design.sus applies to rail-optimized fabrics; give "
                             f"design.endpoints for a {self.topology} fabric")
        return self


class EthernetFabric(StrictModel):
    """An Ethernet network: storage, in-band management or out-of-band management."""

    switch: str = Field(description="Catalog switch type used as the per-rack (ToR) switch.")
    per_rack: int = Field(default=1, ge=0, le=4, description="ToR switches per rack.")
    spine_switch: str | None = Field(
        default=None, description="Catalog switch type aggregating the ToRs; none for one rack."
    )
    network_racks: list[str] = Field(
        default_factory=list, description="Racks for the aggregation switches."
    )
    node_port_gbps: PositiveInt | dict[str, PositiveInt] | None = Field(
        default=None, description="Speed node ports run at when the NICs and the ToR ports "
        "differ (a port mode set on both ends, e.g. 100 for 200G NICs on 100G ToR ports, 400 "
        "for 400G NICs on 800G ports), for every node or by node group name ({ff: 25}); at "
        "most the slower end. Unset: the speeds must match.")
    uplink_gbps: PositiveInt | None = Field(
        default=None, description="Speed ToR-to-aggregation links run at when the two switch "
        "models differ; at most the slower end. Unset: the speeds must match.")
    core_uplinks: int = Field(
        default=2, ge=2, multiple_of=2, description="Uplinks from each aggregation switch "
        "to the core pair, half to each core switch (its top ports); more lowers the "
        "aggregation tier's oversubscription (cross-block and cross-hall traffic).")
    core: Literal["site", "hall"] = Field(
        default="site", description="How the aggregation blocks are joined: site, one core "
        "pair for the whole network; hall, a core pair per hall (in that hall's network "
        "racks) joining its blocks, and a site core pair joining the hall cores (each hall "
        "core's top core_uplinks ports), as GW-scale sites of many halls are built.")
    core_switch: str | None = Field(
        default=None, description="Catalog switch type of the core switches (hall and site "
        "core pairs); unset, the spine_switch model.")
    max_oversubscription: PositiveFloat | None = Field(
        default=None, description="Most downlink:uplink bandwidth a ToR or aggregation "
        "switch of this network may have (GPU155, a warning). Unset: 4 for storage, 8 for "
        "in-band, no limit for out-of-band.")
    pairs_in_one_rack: bool = Field(
        default=False, description="Let the two switches of an aggregation (or core) pair "
        "share a rack. Unset, each pair is split over two network racks (two failure "
        "domains: one rack's power or top-of-rack fault leaves the other switch up), and "
        "lint (GPU116) reports a pair that had to share one.")


IB_FABRIC_NAME = r"^[a-z][a-z0-9]{0,15}$"
"""Names of further InfiniBand fabrics: they prefix switch names (``ib-<name>-...``) and name
output directories (``opensm/<name>/``), so no dashes, dots or upper case."""


class Fabrics(StrictModel):
    """The networks of a GPU site: compute (plus further InfiniBand fabrics), storage, in-band
    and OOB."""

    compute: ComputeFabric | None = Field(default=None, description="InfiniBand compute fabric.")
    infiniband: dict[Annotated[str, Field(pattern=IB_FABRIC_NAME)], ComputeFabric] = Field(
        default_factory=dict,
        description="Further InfiniBand fabrics by name (a second compute zone, a storage IB "
        "fabric), each a separate subnet with its own subnet manager, GUID files, ibsim net "
        "file and `fabric verify --fabric NAME` scope; a node group is on at most one "
        "InfiniBand fabric. Names: lower case letters and digits, e.g. zone2.",
    )
    storage: EthernetFabric | None = Field(default=None, description="Storage network.")
    inband: EthernetFabric | None = Field(default=None, description="In-band management network.")
    oob: EthernetFabric | None = Field(default=None, description="Out-of-band (BMC) network.")

    def ib(self) -> dict[str, ComputeFabric]:
        """Every InfiniBand fabric by name: ``compute`` first, then ``infiniband`` in file
        order."""
        out = {"compute": self.compute} if self.compute is not None else {}
        out.update(self.infiniband)
        return out


class AddressCapacity(StrictModel):
    """The floor grid addresses are carved on; growth inside it never renumbers anything.

    Rack subnets, IPoIB addresses and ToR management addresses are keyed by position: hall
    (order in the file), row (order in its hall), rack (index in its row) and U. Add halls
    and rows at the end of their lists (their place on the floor is x_m/y_m)."""

    rows_per_hall: int = Field(default=16, ge=1, le=256,
                               description="Rows a hall can ever hold.")
    racks_per_row: int = Field(default=32, ge=1, le=1000,
                               description="Racks a row can ever hold.")
    rack_units: int = Field(default=48, ge=1, le=60,
                            description="Tallest rack (U): one host address per U per rack.")
    pdus_per_rack: int = Field(default=4, ge=0, le=8,
                               description="PDU (OOB) addresses reserved per rack.")
    dhcp_free: int = Field(default=8, ge=0, le=256,
                           description="Addresses at least left free at the end of each rack's "
                                       "oob and inband subnet: the DHCP dynamic pool that finds "
                                       "machines not in the plan yet.")


class Addressing(StrictModel):
    """Address pools; per-rack / per-SU subnets are carved from these."""

    oob: Cidr = Field(description="BMC / out-of-band pool.")
    inband: Cidr = Field(description="In-band management pool (host boot interfaces).")
    storage: Cidr | None = Field(default=None, description="Storage network pool.")
    ipoib: list[Cidr] = Field(
        default_factory=list, description="IPoIB pools, one per rail or plane (or one shared)."
    )
    ipoib_fabrics: dict[str, list[Cidr]] = Field(
        default_factory=dict,
        description="IPoIB pools of further InfiniBand fabrics (fabrics.infiniband), by fabric "
        "name: one per rail or plane, or one to split. A further fabric without an entry gets "
        "no IPoIB addresses (each fabric is its own IPoIB broadcast domain).",
    )
    switch_mgmt: Cidr = Field(description="Switch management ports.")
    pod_cidr: Cidr = Field(description="Kubernetes pod network.")
    service_cidr: Cidr = Field(description="Kubernetes service network.")
    capacity: AddressCapacity = Field(
        default_factory=AddressCapacity,
        description="Design capacity of the floor that addresses are keyed by: every rack "
                    "position (hall, row, rack) owns a fixed block, whether built or not.",
    )


class Software(StrictModel):
    """Software stack versions the playbooks install and lint checks."""

    os: Literal["ubuntu-22.04", "ubuntu-24.04"] = Field(description="Host operating system.")
    driver_branch: int = Field(ge=400, le=999, description="NVIDIA driver branch, e.g. 580.")
    driver_version: str = Field(pattern=r"^\d{3}\.\d+(\.\d+)?$", description="Exact driver version.")
    kernel_modules: Literal["auto", "open", "proprietary"] = Field(
        default="auto", description="Open or proprietary kernel modules; auto picks per GPU."
    )
    cuda: str = Field(pattern=r"^\d+\.\d+$", description="CUDA toolkit version, e.g. 13.0.")
    nccl: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="NCCL version, e.g. 2.28.3.")
    fabric_manager: str | None = Field(
        default=None, description="Fabric Manager version; defaults to the driver version."
    )
    doca_ofed: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="DOCA-OFED version.")
    doca_profile: Literal["doca-ofed", "doca-roce", "doca-all"] = Field(
        default="doca-ofed", description="DOCA host profile."
    )
    dcgm: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="DCGM version.")
    kubernetes: str | None = Field(
        default=None, pattern=r"^\d+\.\d+(\.\d+)?$", description="Kubernetes version, if any."
    )


PackageName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]


class OsImage(StrictModel):
    """An OS image built by ``gpuctl image build`` (mmdebstrap) and booted by node groups."""

    name: Name = Field(description="Image name, referenced by node_groups[].image.")
    distribution: Literal["debian", "ubuntu"] = Field(description="Distribution family.")
    suite: str = Field(pattern=r"^[a-z]+(-[a-z]+)?$",
                       description="Release codename, e.g. bookworm or noble.")
    mirror: str = Field(
        pattern=r"^(https?|file)://\S+$",
        description="Package mirror URL; a local or air-gapped mirror works the same way.",
    )
    components: list[Annotated[str, Field(pattern=r"^[a-z-]+$")]] = Field(
        default_factory=lambda: ["main"], min_length=1, description="Archive components.")
    variant: Literal["essential", "minbase", "apt", "required", "important", "standard"] = Field(
        default="minbase", description="mmdebstrap variant: the base package set.")
    packages: list[PackageName] = Field(
        default_factory=list, description="Packages installed on top of the variant.")
    keyring: str | None = Field(
        default=None,
        description="OpenPGP keyring file that signs the mirror (default: the host's keyrings).",
    )


class Burnin(StrictModel):
    """Acceptance-test settings."""

    profile: str = Field(description="Threshold profile name, e.g. h100-ndr.")
    overrides: dict[str, float] = Field(
        default_factory=dict, description="Per-site threshold overrides, metric -> value."
    )


class Site(StrictModel):
    """A whole GPU data-center site."""

    site: SiteInfo = Field(description="Facility-level facts.")
    catalogs: list[str] = Field(
        default_factory=list, description="Extra catalog files, relative to the site directory."
    )
    includes: list[str] = Field(
        default_factory=list,
        description="Files merged into this one (their top-level lists are appended).",
    )
    halls: list[Hall] = Field(min_length=1, description="Data halls.")
    node_groups: list[NodeGroup] = Field(min_length=1, description="Groups of identical nodes.")
    fabrics: Fabrics = Field(description="Compute, storage, in-band and OOB networks.")
    addressing: Addressing = Field(description="Address pools.")
    software: Software = Field(description="Software stack versions.")
    images: list[OsImage] = Field(
        default_factory=list, description="OS images the node groups boot (gpuctl image build).")
    burnin: Burnin = Field(description="Burn-in settings.")
