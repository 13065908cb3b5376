"""The NVIDIA version matrix (provision/catalog/versions.yaml) as typed data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from provision.resources import catalog_files


@dataclass(frozen=True)
class VersionMatrix:
    branches: dict[int, dict[str, Any]]
    generations: dict[str, dict[str, Any]]
    nccl_cuda: dict[str, list[str]]
    dcgm_cuda_majors: dict[str, list[str]]


def parse_matrix(text: str) -> VersionMatrix:
    data = yaml.safe_load(text)
    return VersionMatrix(
        branches={int(k): v for k, v in data["driver_branches"].items()},
        generations=data["gpu_generations"],
        nccl_cuda={str(k): [str(x) for x in v] for k, v in data["nccl_cuda"].items()},
        dcgm_cuda_majors={str(k): [str(x) for x in v] for k, v in data["dcgm_cuda_majors"].items()},
    )


def as_vars(m: VersionMatrix) -> dict[str, Any]:
    """The matrix in versions.yaml's shape with string keys: ``gpuctl_version_matrix``, the
    group var the roles assert against (so a rendered inventory needs no repository)."""
    return {
        "driver_branches": {str(k): v for k, v in sorted(m.branches.items())},
        "gpu_generations": m.generations,
        "nccl_cuda": m.nccl_cuda,
        "dcgm_cuda_majors": m.dcgm_cuda_majors,
    }


@cache
def matrix() -> VersionMatrix:
    """The built-in matrix (read once; it is package data)."""
    text = catalog_files().joinpath("versions.yaml").read_text("utf-8")
    return parse_matrix(text)


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))
