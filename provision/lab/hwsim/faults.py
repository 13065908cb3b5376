"""The fault store: which simulated hardware faults are injected on which lab host.

One file per host, ``<sim_dir>/faults/<host>.json``; the simulated commands read it on every
run, so a fault takes effect on the next command without restarting anything. An ``xid`` fault
also appends the kernel line to ``<sim_dir>/kmsg/<host>.log`` (JSON lines), which the simulated
``dmesg`` prints; clearing a host's faults empties that log too (as a reboot would).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import LabError
from provision.lab.hwsim.personality import check_host, gpu_bus_id

# kind -> (what it does, {param: (type, default)}); default None means "all" / "not set".
FAULT_KINDS: dict[str, tuple[str, dict[str, tuple[type, int | str | None]]]] = {
    "gpu-missing": ("GPU --gpu disappears from nvidia-smi, dcgmi and NCCL", {"gpu": (int, 0)}),
    "hca-down": (
        "HCA mlx5_<--hca> port is Down (or state=Polling); perftest on it fails",
        {"hca": (int, 0), "state": (str, "Down")},
    ),
    "hca-200g": (
        "HCA mlx5_<--hca> links at half its rate (200 where 400 expected, 100 on HDR)",
        {"hca": (int, 0)},
    ),
    "slow-nccl": (
        "this node drags every NCCL collective it is part of to 40-60% busbw",
        {"percent": (int, None)},
    ),
    "xid": (
        "an Xid (default 79) for GPU --gpu appears in the kernel log (dmesg)",
        {"gpu": (int, 0), "xid": (int, 79)},
    ),
    "ecc": (
        "GPU --gpu has uncorrectable volatile ECC errors and a pending row remap",
        {"gpu": (int, 0)},
    ),
    "dcgm-fail": (
        "a dcgmi diag test fails on GPU --gpu (memory at -r 2+, software at -r 1)",
        {"gpu": (int, 0), "test": (str, None)},
    ),
    "nvlink-down": ("NVLinks of GPU --gpu (default: every GPU) are inactive", {"gpu": (int, None)}),
}

XID_TEXT: dict[int, str] = {
    13: "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Out Of Range Address",
    31: "Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ "
    "0x7f2a_3c000000. Fault is of type FAULT_PDE ACCESS_TYPE_READ",
    43: "Ch 00000010, intr 00000000. Reset channel verif error",
    48: "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer "
    "at partition 0, subpartition 0.",
    63: "Row Remapper: New row (0x00000000004c5a20) marked for remapping, reset gpu to activate.",
    64: "Row Remapper: Failed to mark row (0x00000000004c5a20) for remapping.",
    74: "NVLink: fatal error detected on link 3(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)",
    79: "GPU has fallen off the bus.",
    92: "High single-bit ECC error rate",
    94: "Contained: SM (0x1). RST: No, D-RST: No",
    95: "Uncontained: LTC TAG (0x2,0x0). RST: Yes, D-RST: No",
    119: "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 "
    "(GSP_RM_CONTROL) (0x20801348 0x204).",
}


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind and its parameters (defaults filled in)."""

    kind: str
    params: dict[str, int | str] = field(default_factory=dict)

    def describe(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.kind} {args}".strip()


def faults_path(sim_dir: Path, host: str) -> Path:
    return sim_dir / "faults" / f"{check_host(host)}.json"


def kmsg_path(sim_dir: Path, host: str) -> Path:
    return sim_dir / "kmsg" / f"{check_host(host)}.log"


def make_fault(kind: str, **params: int | str | None) -> Fault:
    """Validate ``kind`` and ``params`` and fill in defaults; LabError listing what is allowed."""
    if kind not in FAULT_KINDS:
        raise LabError(f"unknown fault kind {kind!r}; allowed: {', '.join(FAULT_KINDS)}")
    spec = FAULT_KINDS[kind][1]
    extra = sorted(k for k, v in params.items() if v is not None and k not in spec)
    if extra:
        allowed = ", ".join(spec) or "none"
        raise LabError(f"fault {kind!r} takes no parameter {extra[0]!r}; allowed: {allowed}")
    out: dict[str, int | str] = {}
    for name, (typ, default) in spec.items():
        value = params.get(name)
        if value is None:
            value = default
        if value is None:
            continue
        if typ is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LabError(
                    f"fault {kind!r}: {name} must be a non-negative integer, not {value!r}"
                )
        elif not isinstance(value, str) or not value:
            raise LabError(f"fault {kind!r}: {name} must be a non-empty string, not {value!r}")
        out[name] = value
    state = out.get("state")
    if state is not None and state not in ("Down", "Polling"):
        raise LabError(f"fault 'hca-down': state must be 'Down' or 'Polling', not {state!r}")
    pct = out.get("percent")
    if isinstance(pct, int) and not 1 <= pct <= 100:
        raise LabError(f"fault 'slow-nccl': percent must be 1..100, not {pct!r}")
    return Fault(kind, out)


def read_faults(sim_dir: Path, host: str) -> list[Fault]:
    """The faults injected on ``host`` (empty when none); LabError if the file is corrupt."""
    path = faults_path(sim_dir, host)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [make_fault(str(f["kind"]), **f.get("params", {})) for f in data["faults"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{path}: unreadable fault file: {exc}") from exc


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _store(sim_dir: Path, host: str, faults: list[Fault]) -> None:
    path = faults_path(sim_dir, host)
    if not faults:
        path.unlink(missing_ok=True)
        return
    body = {
        "host": host,
        "faults": [{"kind": f.kind, "params": dict(sorted(f.params.items()))} for f in faults],
    }
    _write(path, json.dumps(body, indent=2, sort_keys=True) + "\n")


def xid_line(gpu: int, code: int) -> str:
    """The kernel message the NVIDIA driver logs for Xid ``code`` on GPU ``gpu``."""
    pci = gpu_bus_id(gpu)[4:-2].lower()  # 0000:18:00
    text = XID_TEXT.get(code, "Unspecified error (simulated)")
    return f"NVRM: Xid (PCI:{pci}): {code}, pid='<unknown>', name=<unknown>, {text}"


def set_fault(sim_dir: Path, host: str, kind: str, **params: int | str | None) -> Fault:
    """Inject a fault on ``host``; an identical fault already there is not added twice."""
    fault = make_fault(kind, **params)
    current = read_faults(sim_dir, host)
    if fault not in current:
        _store(sim_dir, host, [*current, fault])
    if fault.kind == "xid":
        entry = {
            "t": round(time.time(), 6),
            "msg": xid_line(int(fault.params["gpu"]), int(fault.params["xid"])),
        }
        path = kmsg_path(sim_dir, host)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
    return fault


def clear_faults(sim_dir: Path, host: str | None = None) -> list[str]:
    """Remove every fault of ``host`` (all hosts when None); returns the hosts that had some."""
    hosts = [host] if host is not None else sorted(list_faults(sim_dir))
    cleared = []
    for h in hosts:
        if read_faults(sim_dir, h):
            cleared.append(h)
        faults_path(sim_dir, h).unlink(missing_ok=True)
        kmsg_path(sim_dir, h).unlink(missing_ok=True)
    return cleared


def list_faults(sim_dir: Path) -> dict[str, list[Fault]]:
    """Every host with injected faults, sorted by host name."""
    found: dict[str, list[Fault]] = {}
    for path in sorted((sim_dir / "faults").glob("*.json")):
        faults = read_faults(sim_dir, path.stem)
        if faults:
            found[path.stem] = faults
    return found


def read_kmsg(sim_dir: Path, host: str) -> list[tuple[float, str]]:
    """The simulated kernel messages of ``host`` as (epoch seconds, message), oldest first."""
    path = kmsg_path(sim_dir, host)
    out: list[tuple[float, str]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            entry = json.loads(line)
            out.append((float(entry["t"]), str(entry["msg"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out
