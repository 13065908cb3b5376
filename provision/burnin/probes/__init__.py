"""Burn-in probes: one command builder and one pure parser per tool.

:data:`KINDS` maps each kind name (as used by ``gpuctl burnin parse KIND FILE``) to its
parser, and :func:`to_json` renders any parse result as deterministic JSON (fields in
declaration order, two-space indent). Which probes a burn-in runs, with which arguments, and
how their parses are judged is the check table, :mod:`provision.burnin.checks`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from provision.burnin.probes import (
    dcgmi_diag,
    infiniband,
    lspci,
    nccl,
    nvidia_smi_csv,
    nvidia_smi_q,
    nvidia_smi_xml,
    nvlink,
    perftest,
    xid,
)

KINDS: dict[str, Callable[[str], Any]] = {
    "nvidia-smi-xml": nvidia_smi_xml.parse,
    "nvidia-smi-q": nvidia_smi_q.parse,
    "nvidia-smi-csv": nvidia_smi_csv.parse,
    "nvlink": nvlink.parse,
    "xid": xid.parse,
    "dcgmi-diag": dcgmi_diag.parse,
    "ibstat": infiniband.parse_ibstat,
    "ibstatus": infiniband.parse_ibstatus,
    "lspci": lspci.parse,
    "ib-write-bw": perftest.parse_write_bw,
    "ib-write-lat": perftest.parse_write_lat,
    "nccl": nccl.parse,
}
"""Kind name -> pure parser ``parse(text) -> result``."""


def to_data(result: Any) -> Any:
    """Plain JSON-able data of a parse result (dataclass or pydantic model)."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    raise TypeError(f"not a parse result: {type(result).__name__}")


def to_json(result: Any) -> str:
    """Deterministic indented JSON of a parse result."""
    return json.dumps(to_data(result), indent=2, ensure_ascii=False)


__all__ = ["KINDS", "to_data", "to_json"]
