"""Regenerate tests/corpus/broken/*.yaml from the lab site: one mistake per file.

Each file starts with ``# expect: CODE EXIT`` and marks the line the finding must point at
with a ``# <- here`` comment (or ``# expect-line: N`` when the line has no room for one).
Run: python tests/corpus/make_broken.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
LAB = (HERE.parents[1] / "inventory/sites/lab/site.yaml").read_text()

# name: (old, new, code, exit status)
CASES: dict[str, tuple[str, str, str, int]] = {
    "yaml-unclosed-bracket": ("rows: [a]", "rows: [a  # <- here", "GPU001", 2),
    "yaml-duplicate-key": ("  climate: temperate\n", "  climate: temperate\n  climate: cold  # <- here\n", "GPU003", 2),
    "unknown-top-level-key": ("halls:\n", "halsl:  # <- here\n  - {}\nhalls:\n", "GPU002", 1),
    "unknown-rack-key": ("rack: {size_u: 48, power_kw: 36, cooling: air}", "rack: {size_u: 48, power_kW: 36, power_kw: 36, cooling: air}  # <- here", "GPU002", 1),
    "wrong-type-racks": ("        racks: 1\n", "        racks: two  # <- here\n", "GPU002", 1),
    "negative-rack-power": ("power_kw: 36, cooling: air}", "power_kw: -5, cooling: air}  # <- here", "GPU002", 1),
    "missing-climate": ("  climate: temperate\n", "", "GPU002", 1),
    "bad-climate": ("  climate: temperate\n", "  climate: arctic  # <- here\n", "GPU002", 1),
    "bad-cidr-prefix": ("  inband: 10.210.0.0/20\n", "  inband: 10.210.0.0/33  # <- here\n", "GPU002", 1),
    "cidr-host-bits": ("  inband: 10.210.0.0/20\n", "  inband: 10.210.0.1/20  # <- here\n", "GPU002", 1),
    "hostname-unknown-field": ('hostname: "lab-gpu-{index:02d}"', 'hostname: "lab-{foo}-{index:02d}"  # <- here', "GPU002", 1),
    "u-positions-count": ("      nodes_per_rack: 4\n", "      nodes_per_rack: 3\n", "GPU002", 1),
    "unknown-node-type": ("    type: dgx-a100\n", "    type: dgx-h900  # <- here\n", "GPU124", 1),
    "unknown-hall": ("      hall: h1\n", "      hall: h9  # <- here\n", "GPU121", 1),
    "unknown-row": ("      rows: [a]\n", "      rows: [z]  # <- here\n", "GPU121", 1),
    "unknown-switch": ("    switch: qm8700\n", "    switch: qm9999  # <- here\n", "GPU125", 1),
    "unknown-fabric-group": ("    node_groups: [gpu]\n", "    node_groups: [gpus]  # <- here\n", "GPU122", 1),
    "unknown-network-rack": ("    network_racks: [a01]\n", "    network_racks: [z01]  # <- here\n", "GPU123", 1),
    "rack-over-budget": ("power_kw: 36, cooling: air}", "power_kw: 20, cooling: air}  # <- here", "GPU101", 1),
    "hall-over-capacity": ("    power_capacity_kw: 60\n", "    power_capacity_kw: 25  # <- here\n", "GPU102", 1),
    "site-over-capacity": ("  power_capacity_mw: 0.1\n", "  power_capacity_mw: 0.02  # <- here\n", "GPU103", 1),
    "air-cannot-cool": ("power_kw: 36, cooling: air}", "power_kw: 60, cooling: air}  # <- here", "GPU104", 1),  # + dgx-h100
    "liquid-node-in-air-rack": ("    type: dgx-a100\n    count: 4\n", "    type: hgx-b200-dlc  # <- here\n    count: 2\n", "GPU105", 1),
    "node-above-rack-top": ("u_positions: [2, 8, 14, 20]", "u_positions: [2, 8, 14, 44]", "GPU111", 1),
    "overlapping-slots": ("u_positions: [2, 8, 14, 20]", "u_positions: [2, 5, 14, 20]  # <- here", "GPU113", 1),
    "not-enough-racks": ("    count: 4\n", "    count: 5  # <- here\n", "GPU112", 1),
    "duplicate-row": ("        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "        rack: {size_u: 48, power_kw: 36, cooling: air}\n      - name: a  # <- here\n        racks: 1\n        y_m: 3\n        rack: {size_u: 48, power_kw: 36, cooling: air}\n", "GPU131", 1),
    "fm-version-mismatch": ("  dcgm: 4.4.1\n", "  dcgm: 4.4.1\n  fabric_manager: 580.82.07  # <- here\n", "GPU161", 1),
    "cuda-newer-than-driver": ('  cuda: "13.0"\n  nccl: 2.28.3\n', '  cuda: "13.2"  # <- here\n  nccl: 2.28.9\n', "GPU162", 1),
    "eol-driver-branch": ('  driver_branch: 580\n  driver_version: 580.95.05\n  cuda: "13.0"\n  nccl: 2.28.3\n', '  driver_branch: 535  # <- here\n  driver_version: 535.183.01\n  cuda: "12.2"\n  nccl: 2.21.5\n', "GPU163", 1),
    "driver-off-branch": ("  driver_version: 580.95.05\n", "  driver_version: 575.57.08  # <- here\n", "GPU165", 1),
    "nccl-not-built-for-cuda": ("  nccl: 2.28.3\n", "  nccl: 2.25.1  # <- here\n", "GPU166", 1),
    "unknown-burnin-profile": ("  profile: a100-hdr\n", "  profile: a100-xyz  # <- here\n", "GPU167", 1),
    "fabric-speed-mismatch": ("    speed: HDR\n", "    speed: NDR  # <- here\n", "GPU142", 1),
    "planes-vs-hcas": ("    topology: fat-tree\n", "    topology: multi-plane\n    planes: 4  # <- here\n", "GPU143", 1),
    "pools-overlap": ("  oob: 10.210.16.0/20\n", "  oob: 10.210.0.0/24\n", "GPU152", 1),
    "pool-too-small": ("  inband: 10.210.0.0/20\n", "  inband: 10.210.0.0/29  # <- here\n", "GPU151", 1),
    "fabric-radix-too-small": ("halls:\n", "catalogs: [tiny-catalog.yaml]\nhalls:\n", "GPU141", 1),
    "missing-include": ("halls:\n", "includes: [no-such-file.yaml]\nhalls:\n", "GPU001", 2),
    "no-rack-space-for-switches": ("power_kw: 36, cooling: air}", "power_kw: 36, cooling: air, size_u: 26}", "GPU002", 1),
}
# Where the marker comment cannot go on the reported line, give the line explicitly.
LINES = {"missing-climate": "=site:", "yaml-unclosed-bracket": "      nodes_per_rack: 4", "u-positions-count": "    placement:",
         "node-above-rack-top": "u_positions: [2, 8, 14, 44]",
         "pools-overlap": "  oob: 10.210.0.0/24",
         "fabric-radix-too-small": "  compute:",
         "missing-include": "includes:",
         "no-rack-space-for-switches": "  compute:",
}


def main() -> None:
    out = HERE / "broken"
    out.mkdir(exist_ok=True)
    for name, (old, new, code, status) in CASES.items():
        assert old in LAB, name
        text = LAB.replace(old, new, 1)
        if name == "air-cannot-cool":
            text = text.replace("type: dgx-a100", "type: dgx-h100").replace(
                "u_positions: [2, 8, 14, 20]", "u_positions: [2, 10, 18, 26]")
        if name == "fabric-radix-too-small":
            text = text.replace("switch: qm8700", "switch: tiny-ib4")
        if name == "no-rack-space-for-switches":
            text = text.replace("cooling: air, size_u: 26}", "cooling: air}").replace(
                "size_u: 48, power_kw: 36", "size_u: 26, power_kw: 36")
            code, status = "GPU144", 1
        lines = text.splitlines()
        marker = LINES.get(name, "# <- here")
        line = next(i for i, ln in enumerate(lines, 3)
                    if (ln == marker[1:] if marker.startswith("=") else marker in ln))
        header = f"# expect: {code} exit {status} line {line}\n# case: {name}\n"
        (out / f"{name}.yaml").write_text(header + text)
    (out / "tiny-catalog.yaml").write_text(
        "# A 4-port HDR switch: too small for the lab fabric in two tiers.\nswitches:\n"
        "  - {name: tiny-ib4, vendor: Test, model: 4-port HDR, technology: infiniband, "
        "ports: 4, cages: 4, ports_per_cage: 1, speed_gbps: 200, ib_speed: HDR, "
        "max_power_kw: 0.1, typical_power_kw: 0.05, rack_units: 1}\n")


if __name__ == "__main__":
    main()
