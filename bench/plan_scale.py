"""Scale benchmark for validate + plan + write (not a test).

Builds synthetic multi-plane sites of 2,048, 16,384 and 131,072 GPUs (HGX B200 nodes,
8 planes, liquid-cooled halls of 8 rows x 16 racks) and runs `gpuctl plan` on each in a
fresh process, printing links, wall time with one render process (``--jobs 1``) and with
the default (two for large plans), each the median of three runs below 100,000 GPUs, the
peak memory of the default run (RSS summed over the process tree, sampled every 20 ms),
its CPU seconds (user/system, the render worker included) and the time per link. When ansible-inventory is
installed it also times ``ansible-inventory --list`` on the generated inventory: the ratio
is plan wall time over that time (below 1: planning the whole site is faster than Ansible
merely reading its inventory).

    python bench/plan_scale.py                  # all sizes
    python bench/plan_scale.py 2048 16384       # some sizes
    python bench/plan_scale.py --no-inventory   # skip the ansible-inventory timing

A size whose site does not plan prints gpuctl's error in its row. Output goes where
``gpuctl plan`` writes by default, inside the repository (``out/bench-*``, git-ignored), not
to /tmp, and every size's output stays until the end: on this VM's ext4, creating a file in
a block group where many inodes were deleted in the last minutes costs over 1 ms of kernel
time (``recently_deleted`` in the inode allocator), 10-20x the normal cost, and the shared
/tmp is where everyone deletes; that would time the VM, not gpuctl. The load average is
printed with the CPU reference: the machine is shared.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
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
                      "rack": {"size_u": 48, "power_kw": 120, "cooling": "liquid", "pdus": 6}}
                     for i, r in enumerate(rows)]
                    + [{"name": "n", "racks": 24, "y_m": 12, "rack_names": "{hall}{row}{index:02d}",
                        "rack": {"size_u": 48, "power_kw": 60, "cooling": "liquid",
                                 "pdus": 4, "pdu": "pdu-3ph-415v-63a-net"}}]})
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
                    "inband": {"switch": "sn4600c", "node_port_gbps": 25},
                    "oob": {"switch": "mgmt-1g-48", "spine_switch": "sn2201", "core": "hall",
                            "network_racks": [f"{h['name']}/n" for h in hall_defs]}},
        "addressing": {"inband": "10.0.0.0/12", "oob": "10.16.0.0/12",
                       "switch_mgmt": "10.32.0.0/14",
                       "ipoib": [f"10.{64 + i * 16}.0.0/12" for i in range(8)],
                       "pod_cidr": "172.16.0.0/12", "service_cidr": "192.168.0.0/16",
                       "capacity": {"pdus_per_rack": 6}},
        "software": {"os": "ubuntu-24.04", "driver_branch": 580, "driver_version": "580.95.05",
                     "cuda": "13.0", "nccl": "2.28.3", "doca_ofed": "3.1.0", "dcgm": "4.4.1"},
        "burnin": {"profile": "b200-ndr"},
    }


def _tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and its children (shared copy-on-write pages count twice: an upper
    bound of what the render worker adds)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines()
                       if line.startswith("VmRSS:")), 0)
        todo.extend(int(c) for c in children)
    return total


LAST_CPU = [0.0, 0.0]
"""User and system CPU seconds of the last :func:`run`."""


class BenchFailure(RuntimeError):
    """A command of the bench exited non-zero."""


def run(cmd: list[str], sample: bool = False) -> tuple[float, float, str]:
    """Wall seconds, peak MB and stdout of ``cmd``; peak is the sampled sum over the process
    tree with ``sample`` (every 20 ms), else the largest process (getrusage). The CPU
    seconds it took (user, system; its render worker included) go to ``LAST_CPU``."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = usage.ru_maxrss
    t = time.perf_counter()
    peak_sum = 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        while proc.poll() is None:
            if sample:
                peak_sum = max(peak_sum, _tree_rss_kb(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = after.ru_maxrss
    LAST_CPU[:] = [after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime]
    if proc.returncode != 0:
        raise BenchFailure(f"{' '.join(cmd[:2])} failed: {stderr.strip()[-400:]}")
    biggest = peak if peak > before else 0  # maxrss only grows: smaller runs hide under it
    return wall, max(peak_sum, biggest) / 1024, stdout


def cpu_reference() -> float:
    """Seconds for a fixed pure-Python loop: this VM's speed varies with its neighbours, so
    the table is comparable across runs only next to this number."""
    t = time.perf_counter()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.perf_counter() - t


def main() -> None:
    ref, load = cpu_reference(), os.getloadavg()[0]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sizes = [int(a) for a in args] or [2048, 16384, 131072]
    with_inventory = "--no-inventory" not in sys.argv
    rows: list[tuple[object, ...]] = []
    (ROOT / "out").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "out", prefix="bench-") as tmp:
        for gpus in sizes:
            try:
                rows.append(measure(gpus, Path(tmp), with_inventory))
            except BenchFailure as exc:
                rows.append((gpus, str(exc)))
    print(f"CPU reference: a 10M-iteration Python loop took {ref:.2f} s before the runs and "
          f"{cpu_reference():.2f} s after; load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"{'GPUs':>8} {'nodes':>7} {'links':>9} {'1 job s':>8} {'wall s':>8} "
          f"{'user/sys':>9} {'peak MB':>8} {'us/link':>8}  plan/ansible-inventory")
    for row in rows:
        if len(row) == 2:
            print(f"{row[0]:>8} does not plan: {row[1]}")
            continue
        g, n, lk, w1, w, cpu, r, per, ratio = row
        print(f"{g:>8} {n:>7} {lk:>9} {w1:>8.2f} {w:>8.2f} {cpu:>9} {r:>8.0f} {per:>8.1f}  "
              f"{ratio}")


def measure(gpus: int, tmp: Path, with_inventory: bool) -> tuple[object, ...]:
    """One table row for a site of ``gpus`` GPUs, planned under ``tmp``."""
    d = tmp / f"bench-{gpus}"
    d.mkdir()
    (d / "site.yaml").write_text(yaml.safe_dump(site(gpus), sort_keys=False))
    plan = ["gpuctl", "plan", str(d), "--format", "json"]
    # This VM's speed varies run to run: the median of a few runs (fresh output
    # directories each) for the sizes that take seconds, one run for the largest.
    repeat = 3 if gpus < 100_000 else 1
    walls1, walls, peaks, users, syss = [], [], [], [], []
    out = ""
    for i in range(repeat):
        w1, _, _ = run([*plan, "-o", str(d / f"gen-1job-{i}"), "--jobs", "1"])
        w, rss, out = run([*plan, "-o", str(d / ("gen" if i == 0 else f"gen-{i}"))],
                          sample=True)
        walls1.append(w1)
        walls.append(w)
        peaks.append(rss)
        users.append(LAST_CPU[0])
        syss.append(LAST_CPU[1])
    wall1, wall, rss = statistics.median(walls1), statistics.median(walls), max(peaks)
    cpu = f"{statistics.median(users):.1f}/{statistics.median(syss):.1f}"
    summary = json.loads(out)
    links = sum(sum(v.values()) for v in summary["links"].values())
    inv = d / "gen" / "ansible" / "inventory.yml"
    ratio = "-"
    if with_inventory and inv.exists() and shutil.which("ansible-inventory"):
        inv_wall, _, _ = run(["ansible-inventory", "-i", str(inv), "--list"])
        ratio = f"{wall / inv_wall:.2f} ({inv_wall:.1f} s)"
    return (gpus, summary["nodes"], links, wall1, wall, cpu, rss, 1e6 * wall / links, ratio)


if __name__ == "__main__":
    main()
