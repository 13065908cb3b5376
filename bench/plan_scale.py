"""Scale benchmark for validate + plan + write (not a test).

Builds synthetic multi-plane sites of 2,048, 16,384 and 131,072 GPUs (HGX B200 nodes,
8 planes, liquid-cooled halls of 8 rows x 16 racks) and runs `gpuctl plan` on each in a
fresh process, printing wall time, peak RSS, links and the time per 1,000 links; when
ansible-inventory is installed and the render step produced an inventory, it also times
`ansible-inventory --list` on it for the ratio.

    python bench/plan_scale.py            # all sizes
    python bench/plan_scale.py 2048 16384 # some sizes
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NODES_PER_RACK = 8
RACKS_PER_ROW = 16
ROWS_PER_HALL = 8


def site(gpus: int) -> dict[str, object]:
    nodes = gpus // 8
    halls = max(1, -(-nodes // (NODES_PER_RACK * RACKS_PER_ROW * ROWS_PER_HALL)))
    rows = "abcdefgh"
    hall_defs, groups = [], []
    left = nodes
    for h in range(halls):
        name = f"h{h + 1}"
        count = min(left, NODES_PER_RACK * RACKS_PER_ROW * ROWS_PER_HALL)
        left -= count
        hall_defs.append({
            "name": name, "power_capacity_kw": 20000, "x_m": h * 40,
            "rows": [{"name": r, "racks": RACKS_PER_ROW, "y_m": i * 3 + (6 if i >= 4 else 0),
                      "rack_names": "{hall}{row}{index:02d}",
                      "rack": {"size_u": 48, "power_kw": 120, "cooling": "liquid"}}
                     for i, r in enumerate(rows)]
                    + [{"name": "n", "racks": 24, "y_m": 12, "rack_names": "{hall}{row}{index:02d}",
                        "rack": {"size_u": 48, "power_kw": 60, "cooling": "liquid"}}]})
        groups.append({"name": f"gpu-{name}", "type": "hgx-b200-dlc", "count": count,
                       "hostname": f"{name}-gpu-{{index:05d}}",
                       "placement": {"hall": name, "rows": list(rows),
                                     "nodes_per_rack": NODES_PER_RACK,
                                     "u_positions": [3 + 5 * i for i in range(NODES_PER_RACK)]}})
    return {
        "site": {"name": f"bench-{gpus}", "location": "synthetic", "climate": "cold",
                 "power_capacity_mw": 5000, "pue_target": 1.15,
                 "electricity_price_per_kwh": 0.05},
        "halls": hall_defs,
        "node_groups": groups,
        "fabrics": {"compute": {"topology": "multi-plane", "switch": "qm9700", "speed": "NDR",
                                "planes": 8, "node_groups": [g["name"] for g in groups],
                                "network_racks": [f"{h['name']}/n" for h in hall_defs]},
                    "inband": {"switch": "sn4600c"}, "oob": {"switch": "mgmt-1g-48"}},
        "addressing": {"inband": "10.0.0.0/12", "oob": "10.16.0.0/12",
                       "switch_mgmt": "10.32.0.0/14",
                       "ipoib": [f"10.{64 + i * 4}.0.0/14" for i in range(8)],
                       "pod_cidr": "172.16.0.0/12", "service_cidr": "192.168.0.0/16"},
        "software": {"os": "ubuntu-24.04", "driver_branch": 580, "driver_version": "580.95.05",
                     "cuda": "13.0", "nccl": "2.28.3", "doca_ofed": "3.1.0", "dcgm": "4.4.1"},
        "burnin": {"profile": "b200-ndr"},
    }


def run(cmd: list[str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {res.stderr.strip()[-400:]}")
    return wall, max(peak, before) / 1024, res.stdout


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [2048, 16384, 131072]
    rows = []
    for gpus in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / f"bench-{gpus}"
            d.mkdir()
            (d / "site.yaml").write_text(yaml.safe_dump(site(gpus), sort_keys=False))
            wall, rss, out = run(["gpuctl", "plan", str(d), "-o", str(d / "gen"),
                                  "--format", "json"])
            summary = json.loads(out)
            links = sum(sum(v.values()) for v in summary["links"].values())
            inv = d / "gen" / "ansible" / "inventory.yml"
            ratio = "-"
            if inv.exists() and shutil.which("ansible-inventory"):
                inv_wall, _, _ = run(["ansible-inventory", "-i", str(inv), "--list"])
                ratio = f"{wall / inv_wall:.2f}"
            rows.append((gpus, summary["nodes"], links, wall, rss, 1000 * wall / links, ratio))
    print(f"{'GPUs':>8} {'nodes':>7} {'links':>9} {'wall s':>8} {'peak MB':>8} "
          f"{'ms/1k links':>12} {'plan/ansible-inventory':>22}")
    for g, n, lk, w, r, per, ratio in rows:
        print(f"{g:>8} {n:>7} {lk:>9} {w:>8.2f} {r:>8.0f} {per:>12.2f} {ratio:>22}")


if __name__ == "__main__":
    main()
