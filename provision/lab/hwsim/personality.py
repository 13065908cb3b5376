"""A simulated node's hardware facts ("personality") and where the simulator keeps them.

The lab writes one personality per host into ``<sim_dir>/hosts/<host>.json`` from the site's
catalog facts; every simulated command reads it back. ``PRODUCTS`` holds the per-GPU-model
details that the catalog does not carry (architecture, PCI ids, clocks, NVLink layout).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from provision.errors import LabError

LABEL = "gpuctl lab hardware simulator: not real hardware"
"""The text every simulated output carries somewhere its real parser tolerates."""

_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


class Personality(BaseModel):
    """What one simulated node's tools report about its hardware.

    ``extra="forbid"`` so that a misspelled fact in a hand-written file is an error, not a
    silently healthy default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    hostname: str = Field(description="Host name as the node reports it (/etc/hostname).")
    gpu_product: str = Field(description="nvidia-smi product name, e.g. 'NVIDIA H100 80GB HBM3'.")
    gpu_count: int = Field(ge=0, le=64, description="GPUs in the node.")
    gpu_memory_mib: int = Field(gt=0, description="Framebuffer per GPU in MiB.")
    driver_version: str = Field(description="NVIDIA driver version, e.g. '535.161.08'.")
    cuda_version: str = Field(description="CUDA version the driver reports, e.g. '12.2'.")
    vbios_version: str = Field(description="GPU VBIOS version, e.g. '96.00.99.00.01'.")
    hca_count: int = Field(ge=0, le=32, description="InfiniBand HCAs (mlx5_0..N-1).")
    hca_rate_gbps: int = Field(gt=0, description="Link rate per HCA in Gb/s (HDR = 200).")
    nccl_busbw_gbps: float = Field(
        gt=0, description="Single-node all_reduce_perf busbw baseline at large sizes, GB/s."
    )
    ib_write_bw_gbps: float = Field(
        gt=0, description="ib_write_bw baseline per HCA pair at full rate, Gb/s."
    )
    hca_ca_type: str = Field(default="MT4123", description="ibstat CA type (MT4123 = CX-6).")
    hca_fw_version: str = Field(default="20.39.1002", description="HCA firmware version.")
    dcgm_version: str = Field(default="4.2.3", description="DCGM version dcgmi reports.")


@dataclass(frozen=True)
class Product:
    """Per-model details that nvidia-smi and nccl-tests show but the catalog does not carry."""

    architecture: str
    compute_cap: str
    pci_device_id: str
    pci_sub_system_id: str
    power_limit_w: int
    idle_power_w: float
    max_graphics_mhz: int
    max_mem_mhz: int
    pcie_gen: int
    nvlink_links: int
    nvlink_gbps: float
    board_part: str
    inforom_img: str


PRODUCTS: dict[str, Product] = {
    "NVIDIA H100 80GB HBM3": Product(
        "Hopper",
        "9.0",
        "233010DE",
        "16C110DE",
        700,
        69.8,
        1980,
        2619,
        5,
        18,
        26.562,
        "692-2G520-0200-000",
        "G520.0200.00.05",
    ),
    "NVIDIA H200": Product(
        "Hopper",
        "9.0",
        "233510DE",
        "18B010DE",
        700,
        76.3,
        1980,
        3201,
        5,
        18,
        26.562,
        "692-2G520-0280-000",
        "G520.0280.00.02",
    ),
    "NVIDIA A100-SXM4-80GB": Product(
        "Ampere",
        "8.0",
        "20B210DE",
        "147F10DE",
        400,
        61.5,
        1410,
        1593,
        4,
        12,
        25.0,
        "692-2G506-0212-002",
        "G506.0212.00.01",
    ),
    "NVIDIA A100-SXM4-40GB": Product(
        "Ampere",
        "8.0",
        "20B010DE",
        "134F10DE",
        400,
        58.2,
        1410,
        1215,
        4,
        12,
        25.0,
        "692-2G506-0200-003",
        "G506.0200.00.04",
    ),
}
GENERIC_PRODUCT = Product(
    "Hopper",
    "9.0",
    "233010DE",
    "16C110DE",
    700,
    70.0,
    1980,
    2619,
    5,
    18,
    26.562,
    "692-2G520-0200-000",
    "G520.0200.00.05",
)

_PRESETS: dict[str, dict[str, object]] = {
    "NVIDIA H100 80GB HBM3": {
        "gpu_memory_mib": 81559,
        "vbios_version": "96.00.99.00.01",
        "nccl_busbw_gbps": 470.0,
    },
    "NVIDIA H200": {
        "gpu_memory_mib": 143771,
        "vbios_version": "96.00.A5.00.01",
        "nccl_busbw_gbps": 480.0,
    },
    "NVIDIA A100-SXM4-80GB": {
        "gpu_memory_mib": 81920,
        "vbios_version": "92.00.36.00.02",
        "nccl_busbw_gbps": 230.0,
    },
    "NVIDIA A100-SXM4-40GB": {
        "gpu_memory_mib": 40960,
        "vbios_version": "92.00.19.00.10",
        "nccl_busbw_gbps": 225.0,
    },
}

# PCI bus numbers of the eight SXM GPUs on common HGX baseboards.
_GPU_BUSES = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]


def product(name: str) -> Product:
    """The details for a GPU product name; unknown names get Hopper-like generic details."""
    return PRODUCTS.get(name, GENERIC_PRODUCT)


def default_personality(
    hostname: str, gpu_product: str = "NVIDIA H100 80GB HBM3", **overrides: object
) -> Personality:
    """A plausible HGX personality for ``gpu_product`` (8 GPUs, 8 HDR HCAs), with overrides."""
    facts: dict[str, object] = {
        "hostname": hostname,
        "gpu_product": gpu_product,
        "gpu_count": 8,
        "gpu_memory_mib": 81559,
        "driver_version": "535.161.08",
        "cuda_version": "12.2",
        "vbios_version": "96.00.99.00.01",
        "hca_count": 8,
        "hca_rate_gbps": 200,
        "nccl_busbw_gbps": 470.0,
        "ib_write_bw_gbps": 192.0,
    }
    facts.update(_PRESETS.get(gpu_product, {}))
    facts.update(overrides)
    if "ib_write_bw_gbps" not in overrides and "hca_rate_gbps" in overrides:
        facts["ib_write_bw_gbps"] = round(0.96 * float(str(facts["hca_rate_gbps"])), 2)
    return Personality.model_validate(facts)


def check_host(host: str) -> str:
    """Return ``host`` if it is usable as a file name, else raise LabError."""
    if not _HOST_RE.match(host) or host in {".", ".."}:
        raise LabError(f"invalid simulated host name {host!r}: use letters, digits, '.', '_', '-'")
    return host


def hosts_dir(sim_dir: Path) -> Path:
    return sim_dir / "hosts"


def personality_path(sim_dir: Path, host: str) -> Path:
    return hosts_dir(sim_dir) / f"{check_host(host)}.json"


def write_personality(sim_dir: Path, host: str, facts: Personality) -> Path:
    """Write ``facts`` as host ``host``'s personality; returns the file written."""
    path = personality_path(sim_dir, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(facts.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def read_personality(sim_dir: Path, host: str) -> Personality:
    """Read host ``host``'s personality; LabError naming the file if missing or invalid."""
    path = personality_path(sim_dir, host)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabError(f"{path}: no simulated hardware for host {host!r}") from None
    except (OSError, ValueError) as exc:
        raise LabError(f"{path}: unreadable personality: {exc}") from exc
    try:
        return Personality.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LabError(f"{path}: {where}: {first['msg']}") from exc


def known_hosts(sim_dir: Path) -> list[str]:
    """Hosts that have a personality in ``sim_dir``, sorted."""
    return sorted(p.stem for p in hosts_dir(sim_dir).glob("*.json"))


def rng(*parts: object) -> random.Random:
    """A random generator seeded by ``parts`` (host name, command, ...): same input, same draws."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def gpu_bus_id(index: int) -> str:
    """PCI bus id of GPU ``index``, as nvidia-smi prints it (``00000000:18:00.0``)."""
    bus = _GPU_BUSES[index] if index < len(_GPU_BUSES) else f"{(0xE0 + index) % 256:02x}"
    return f"00000000:{bus.upper()}:00.0"


def gpu_uuid(host: str, index: int) -> str:
    digest = hashlib.sha256(f"{host}/gpu{index}".encode()).hexdigest()
    return f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def gpu_serial(host: str, index: int) -> str:
    digest = hashlib.sha256(f"{host}/serial{index}".encode()).digest()
    return "1654" + str(int.from_bytes(digest[:6], "big") % 10**9).zfill(9)


def hca_guid(host: str, index: int) -> str:
    digest = hashlib.sha256(f"{host}/hca{index}".encode()).hexdigest()
    return "0x" + "b83fd203" + digest[:8]
