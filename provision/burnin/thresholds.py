"""Burn-in thresholds: per-profile data (``thresholds.yaml``) with per-site overrides.

    th = thresholds_for("a100-hdr", overrides={"nccl_single_busbw_gbps": 200})
    th.ib_write_bw_floor_gbps      # 0.9 x 200 = 180.0

Profiles are data, not code; :class:`Thresholds` forbids unknown keys so a typo in the YAML
or in a site's ``burnin.overrides`` is an error naming the key and the allowed ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from provision.errors import UsageError

THRESHOLDS_FILE = "thresholds.yaml"


class Thresholds(BaseModel):
    """Acceptance limits of one profile (after overrides)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = Field(description="Profile name, e.g. a100-hdr.")
    gpu_count: int = Field(ge=0, description="GPUs every node must show.")
    gpu_model: str = Field(description="Substring every GPU's product name must contain.")
    nvlinks_per_gpu: int = Field(ge=0, description="Active NVLinks every GPU must have.")
    hca_count: int = Field(ge=0, description="Compute HCAs every node must show.")
    ib_rate_gbps: float = Field(gt=0, description="Line rate of every compute HCA port.")
    ecc_uncorrectable_max: int = Field(ge=0, description="Uncorrectable ECC errors allowed.")
    remapped_rows_uncorrectable_max: int = Field(ge=0, description="Uncorrectable remaps allowed.")
    row_remap_failure_fatal: bool = Field(description="A failed/pending row remap fails.")
    xid_fatal: tuple[int, ...] = Field(description="Xid codes that fail a node.")
    dcgm_must_pass: bool = Field(description="dcgmi diag must pass.")
    pcie_downgrade_fatal: bool = Field(description="A GPU link below its max gen/width fails.")
    nccl_large_bytes: int = Field(gt=0, description="Smallest message size judged for busbw.")
    nccl_single_busbw_gbps: float = Field(gt=0, description="Single-node all_reduce floor.")
    nccl_multi_busbw_gbps: float = Field(gt=0, description="Multi-node all_reduce floor.")
    ib_write_bw_fraction: float = Field(gt=0, le=1, description="ib_write_bw / line rate.")
    ib_write_lat_max_us: float = Field(gt=0, description="ib_write_lat typical ceiling, usec.")
    outlier_fraction: float = Field(gt=0, le=1, description="Fail below this x fleet median.")

    @property
    def ib_write_bw_floor_gbps(self) -> float:
        return round(self.ib_rate_gbps * self.ib_write_bw_fraction, 3)


@cache
def _profiles() -> dict[str, dict[str, Any]]:
    text = resources.files("provision.burnin").joinpath(THRESHOLDS_FILE).read_text("utf-8")
    data = yaml.safe_load(text)
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(profiles, dict):
        raise UsageError(f"{THRESHOLDS_FILE}: no 'profiles' mapping")
    return {str(k): dict(v) for k, v in profiles.items()}


def profile_names() -> list[str]:
    return sorted(_profiles())


def thresholds_for(profile: str, overrides: Mapping[str, float] | None = None) -> Thresholds:
    """The thresholds of ``profile`` with the site's ``overrides`` applied."""
    profiles = _profiles()
    if profile not in profiles:
        raise UsageError(f"unknown burn-in profile {profile!r}; known profiles: "
                         f"{', '.join(sorted(profiles))}")
    data: dict[str, Any] = {**profiles[profile], "profile": profile}
    for key, value in (overrides or {}).items():
        if key not in Thresholds.model_fields or key == "profile":
            allowed = ", ".join(k for k in Thresholds.model_fields if k != "profile")
            raise UsageError(f"burnin.overrides: unknown threshold {key!r}; allowed: {allowed}")
        data[key] = value
    try:
        return Thresholds.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"burn-in profile {profile!r}: {where}: {first['msg']}") from exc
