"""Simulated ``dcgmi`` (gpuctl lab hardware simulator: not real hardware).

Supported: ``dcgmi diag -r 1|2|3|4 [-j] [-i GPU,...]`` (the DCGM 4 JSON document with ``-j``,
a plain results table without), ``dcgmi discovery -l`` and ``dcgmi --version``. Tests per
level follow DCGM 4: 1 = software; 2 adds memory and pcie; 3 adds diagnostic, targeted_stress,
targeted_power and memory_bandwidth; 4 adds memtest and pulse_test. A ``dcgm-fail`` fault makes
one test fail on one GPU (``memory`` from level 2, else ``software``) and dcgmi exit 1. The
JSON carries the simulator label as ``metadata.simulator``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from provision.lab.hwsim.nvsmi_data import GpuView, gpu_views
from provision.lab.hwsim.personality import LABEL, rng
from provision.lab.hwsim.state import HostState, SimExit, load_current, run_tool

TESTS: list[tuple[int, str, str]] = [
    (1, "Deployment", "software"),
    (2, "Hardware", "memory"),
    (2, "Integration", "pcie"),
    (3, "Hardware", "diagnostic"),
    (3, "Stress", "targeted_stress"),
    (3, "Stress", "targeted_power"),
    (3, "Stress", "memory_bandwidth"),
    (4, "Hardware", "memtest"),
    (4, "Hardware", "pulse_test"),
]
FAIL_TEXT = {
    "software": "Pending row remap or page retirement found on GPU {gpu}. Drain and reset it.",
    "memory": "GPU {gpu} had memory errors: {n} mismatches during the memory test. "
    "Run a field diagnostic on the GPU.",
    "pcie": "GPU {gpu} PCIe bandwidth {bw:.2f} GB/s is below the minimum of 20.00 GB/s.",
}
USAGE = f"""dcgmi -- {LABEL}
Usage: dcgmi diag -r <1|2|3|4> [-j] [-i <gpu ids>]
       dcgmi discovery -l
       dcgmi --version
"""


def _info(test: str, g: GpuView, state: HostState) -> list[str]:
    r = rng(state.host, "dcgm", test, g.slot)
    if test == "memory":
        return [f"Allocated {int(g.memory_total * 1048576 * 0.9)} bytes (90.0%)"]
    if test == "pcie":
        base = 53.0 if g.pcie_gen >= 5 else 24.5
        h2d, d2h = base + r.uniform(-0.6, 0.6), base + r.uniform(-0.6, 0.6)
        return [
            f"GPU to Host bandwidth:\t\t{d2h:.2f} GB/s",
            f"Host to GPU bandwidth:\t\t{h2d:.2f} GB/s",
            f"bidirectional bandwidth:\t{(h2d + d2h) * 0.93:.2f} GB/s",
            f"GPU to Host latency:\t\t{r.uniform(1.4, 1.9):.3f} us",
            f"Host to GPU latency:\t\t{r.uniform(1.5, 2.0):.3f} us",
        ]
    if test == "memory_bandwidth":
        return [f"GPU {g.index} DRAM bandwidth: {r.uniform(2.9e6, 3.1e6):.2f} MB/s"]
    return []


def _failed_test(level: int, requested: str | None) -> str:
    if requested:
        return requested
    return "memory" if level >= 2 else "software"


def diag_document(state: HostState, gpus: list[GpuView], level: int) -> dict[str, Any]:
    """The DCGM 4 ``dcgmi diag -j`` document for ``gpus`` at run level ``level``."""
    failing: dict[tuple[int, str], bool] = {}
    for slot, test in state.dcgm_failures():
        failing[(slot, _failed_test(level, test))] = True
    categories: dict[str, list[dict[str, Any]]] = {}
    for lvl, category, test in TESTS:
        if lvl > level:
            continue
        results = []
        for g in gpus:
            res: dict[str, Any] = {
                "entity_group": "GPU",
                "entity_group_id": 1,
                "entity_id": g.index,
                "status": "Pass",
            }
            info = _info(test, g, state)
            if info:
                res["info"] = info
            if failing.get((g.slot, test)):
                text = FAIL_TEXT.get(test, "Test {test} failed on GPU {gpu}.")
                res["status"] = "Fail"
                res["warnings"] = [
                    {
                        "error_category": 3,
                        "error_id": 83,
                        "error_severity": 2,
                        "warning": text.format(
                            gpu=g.index, test=test, bw=11.2, n=rng(state.host, test).randint(2, 40)
                        ),
                    }
                ]
            results.append(res)
        status = "Fail" if any(r["status"] == "Fail" for r in results) else "Pass"
        categories.setdefault(category, []).append(
            {"name": test, "results": results, "test_summary": {"status": status}}
        )
    return {
        "DCGM Diagnostic": {
            "test_categories": [
                {"category": cat, "tests": tests} for cat, tests in categories.items()
            ]
        },
        "entity_groups": [
            {
                "entities": [
                    {
                        "device_id": g.pci_device_id[:4].lower(),
                        "entity_id": g.index,
                        "serial_num": g.serial,
                    }
                    for g in gpus
                ],
                "entity_group": "GPU",
                "entity_group_id": 1,
            }
        ],
        "metadata": {
            "Driver Version Detected": state.facts.driver_version,
            "version": state.facts.dcgm_version,
            "simulator": LABEL,
        },
    }


def _failed(doc: dict[str, Any]) -> bool:
    return any(
        t["test_summary"]["status"] == "Fail"
        for c in doc["DCGM Diagnostic"]["test_categories"]
        for t in c["tests"]
    )


def render_table(doc: dict[str, Any]) -> str:
    rule = "+---------------------------+------------------------------------------------+"
    lines = [
        "Successfully ran diagnostic for group.",
        rule,
        f"| {'Diagnostic':<26}| {'Result':<47}|",
        rule.replace("-", "="),
        f"|-----  Metadata  ----------+{'-' * 48}|",
    ]
    meta = doc["metadata"]
    lines.append(f"| {'DCGM Version':<26}| {meta['version']:<47}|")
    lines.append(f"| {'Driver Version Detected':<26}| {meta['Driver Version Detected']:<47}|")
    for cat in doc["DCGM Diagnostic"]["test_categories"]:
        lines.append(f"|-----  {cat['category'] + '  ':-<20}+{'-' * 48}|")
        for test in cat["tests"]:
            lines.append(
                f"| {test['name'].replace('_', ' ').title():<26}| "
                f"{test['test_summary']['status']:<47}|"
            )
            for res in test["results"]:
                for w in res.get("warnings", []):
                    lines.append(
                        f"| {'Warning':<26}| GPU{res['entity_id']}: {w['warning'][:40]:<41}|"
                    )
    lines += [rule, f"({LABEL})"]
    return "\n".join(lines) + "\n"


def _diag(args: list[str], state: HostState) -> int:
    level, as_json, ids = 0, False, None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-r", "--run") and i + 1 < len(args):
            value = args[i + 1]
            if value not in ("1", "2", "3", "4", "short", "medium", "long", "xlong"):
                raise SimExit(255, f"Error: invalid run level {value!r}. Use 1, 2, 3 or 4.")
            level = {"short": 1, "medium": 2, "long": 3, "xlong": 4}.get(value) or int(value)
            i += 2
        elif a in ("-j", "--json"):
            as_json = True
            i += 1
        elif a in ("-i", "--gpuList") and i + 1 < len(args):
            ids = {int(x) for x in args[i + 1].split(",") if x.strip().isdigit()}
            i += 2
        elif a in ("-g", "--group", "-p", "--parameters", "--iterations") and i + 1 < len(args):
            i += 2
        else:
            raise SimExit(255, f"Error: unknown or incomplete argument {a!r}.\n{USAGE}")
    if not level:
        raise SimExit(255, "Error: the run level (-r) is required.")
    gpus = [g for g in gpu_views(state) if ids is None or g.index in ids]
    if not gpus:
        raise SimExit(255, "Error: no GPUs to run the diagnostic on.")
    doc = diag_document(state, gpus, level)
    text = json.dumps(doc, indent=4) + "\n" if as_json else render_table(doc)
    sys.stdout.write(text)
    return 1 if _failed(doc) else 0


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 255
    state = load_current()
    if args[0] in ("-v", "--version"):
        sys.stdout.write(f"dcgmi  version: {state.facts.dcgm_version}\n({LABEL})\n")
        return 0
    if args[0] == "diag":
        return _diag(args[1:], state)
    if args[:2] == ["discovery", "-l"]:
        gpus = gpu_views(state)
        out = [f"{len(gpus)} GPUs found.", f"({LABEL})"]
        out += [
            f"GPU {g.index}: {g.name} PCI Bus ID: {g.bus_id} Device UUID: {g.uuid}" for g in gpus
        ]
        sys.stdout.write("\n".join(out) + "\n")
        return 0
    raise SimExit(255, f"Error: unsupported dcgmi command {' '.join(args)!r}.\n{USAGE}")


if __name__ == "__main__":
    sys.exit(run_tool(main))
