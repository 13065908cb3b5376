"""The rendered fabric files proven by their real consumers: Debian's ibsim loads the net
file, OpenSM (through umad2sim) runs with the rendered opensm.conf and GUID files, and
ibnetdiscover must see exactly the planned links.

Cases: the ``lab`` site (fat tree, SM on the spine switch) and a one-SU rail-optimized HDR
site made here (QM8700, su_size 20, 19 DGX A100 + the UFM, SM on the UFM, an IPoIB
partition besides the default one). The SuperPOD-sized
example (1,065 nodes) is the slow scale case. Needs root, ibsim-utils, opensm and
infiniband-diags; every wait is bounded and ibsim is always stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from provision.lab.fabric import free_udp_base
from provision.plan.build import Plan
from provision.render.ibsim import ib_fabric, ibsim_net, ibsim_sizes
from provision.render.opensm import opensm_conf, opensm_files, resolve_guids, routing
from tests.render_support import SITES, plan_of_text, site_plan

UMAD2SIM = "/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so"
READY_S = 30.0
TOOL_S = 120.0


def _available() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ibsim", "opensm", "ibnetdiscover"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            return f"{tool} is not installed"
    if not Path(UMAD2SIM).exists():
        return "umad2sim (ibsim-utils) is not installed"
    return None


pytestmark = [pytest.mark.lab, pytest.mark.skipif(_available() is not None,
                                                  reason=_available() or "")]

RAIL_SITE = """
site: {name: rail-hdr, location: test, climate: temperate, power_capacity_mw: 1,
       pue_target: 1.3, electricity_price_per_kwh: 0.1, domain: rail.test.internal}
halls:
  - name: h1
    power_capacity_kw: 400
    rows:
      - {name: a, racks: 5, y_m: 0, rack: {size_u: 48, power_kw: 30, cooling: air}}
      - {name: n, racks: 1, y_m: 3, rack: {size_u: 48, power_kw: 30, cooling: air, pdu: pdu-3ph-415v-63a-net}}
node_groups:
  - name: dgx
    type: dgx-a100
    count: 19
    hostname: "dgx-{index:02d}"
    placement: {hall: h1, rows: [a], nodes_per_rack: 4, u_positions: [2, 10, 18, 26]}
fabrics:
  compute:
    topology: rail-optimized
    switch: qm8700
    speed: HDR
    node_groups: [dgx]
    su_size: 20
    ufm_ports: 4
    ipoib_pkey: "0x8001"
    network_racks: [n01]
  inband: {switch: sn4600c}
  oob: {switch: mgmt-1g-48, spine_switch: sn2201, network_racks: [n01], pairs_in_one_rack: true}
addressing:
  inband: 10.220.0.0/20
  oob: 10.220.16.0/20
  switch_mgmt: 10.220.32.0/22
  ipoib: [10.220.64.0/18]
  capacity: {racks_per_row: 8}
  pod_cidr: 10.244.0.0/16
  service_cidr: 10.96.0.0/16
software: {os: ubuntu-24.04, driver_branch: 580, driver_version: 580.95.05, cuda: "13.0",
           nccl: 2.28.3, doca_ofed: 3.1.0, dcgm: 4.4.1}
burnin: {profile: a100-hdr}
"""




@contextmanager
def _ibsim(net: Path, sizes: dict[str, int], log: Path) -> Iterator[dict[str, str]]:
    port = free_udp_base()
    argv = ["ibsim", "-s", "-r", "-l", str(port), "-n",
            "-N", str(max(2048, sizes["nodes"] + 16)),
            "-S", str(max(256, sizes["switches"] + 4)),
            "-P", str(max(13312, sizes["ports"] + 64)), str(net)]
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=log.parent)
    try:
        deadline = time.monotonic() + READY_S
        while "Network simulator ready" not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"ibsim exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "ibsim did not load the net file in time"
            time.sleep(0.1)
        client = dict(os.environ, LD_PRELOAD=UMAD2SIM, IBSIM_SERVER_NAME="127.0.0.1",
                      IBSIM_SERVER_PORT=str(port))
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


_HEADER = re.compile(r'^(Switch|Ca)\s+\d+\s+"([^"]+)"\s+#\s+"([^"]*)"')
_PORT = re.compile(r'^\[(\d+)\](?:\([0-9a-f]+\))?\s+"([^"]+)"\[(\d+)\](?:\([0-9a-f]+\))?'
                   r'\s+#\s*(.*)$')


def discovered(text: str) -> tuple[set[tuple[str, int, str, int]], dict[str, list[int]], set[str]]:
    """ibnetdiscover output -> (links by node description, CA LIDs, link speeds)."""
    desc: dict[str, str] = {}
    records: list[tuple[str, str, list[tuple[int, str, int, str]]]] = []
    for line in text.splitlines():
        if m := _HEADER.match(line):
            desc[m.group(2)] = m.group(3)
            records.append((m.group(1), m.group(2), []))
        elif records and (m := _PORT.match(line)):
            records[-1][2].append((int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)))
    links: set[tuple[str, int, str, int]] = set()
    lids: dict[str, list[int]] = {}
    speeds: set[str] = set()
    for kind, node, ports in records:
        for port, peer, pport, comment in ports:
            a, b = (desc[node], port), (desc[peer], pport)
            links.add((*a, *b) if a < b else (*b, *a))
            speeds.update(re.findall(r"\b\d+x[A-Z]+\b", comment))
            if kind == "Ca":
                lid = re.match(r"lid (\d+)", comment)
                lids.setdefault(desc[node], []).append(int(lid.group(1)) if lid else 0)
    return links, lids, speeds


def _prove(plan: Plan, tmp: Path) -> dict[str, float]:
    """Run the whole chain on ``plan``; returns timings for the scale note."""
    guids = resolve_guids(plan)
    fabric = ib_fabric(plan)
    engine, _ = routing(fabric)
    net = tmp / "fabric.net"
    net.write_text(ibsim_net(plan, guids))
    for name, text in opensm_files(plan, guids).items():
        (tmp / name).write_text(text)
    conf = tmp / "opensm.conf"
    conf.write_text(opensm_conf(plan, guids, file_dir=str(tmp)))
    for sub in ("tmp", "cache"):
        (tmp / sub).mkdir(exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    with _ibsim(net, ibsim_sizes(plan), tmp / "ibsim.log") as env:
        timings["ibsim_load_s"] = time.monotonic() - t0
        sm_env = dict(env, OSM_TMP_DIR=str(tmp / "tmp"), OSM_CACHE_DIR=str(tmp / "cache"))
        sm_env.pop("SIM_HOST", None)  # attach at the net file's first node: the SM node
        t1 = time.monotonic()
        res = subprocess.run(["opensm", "-F", str(conf), "-f", str(tmp / "opensm.log"),
                              "-o", "-d", "2"], env=sm_env, capture_output=True, text=True,
                             timeout=TOOL_S, check=False, cwd=tmp)
        timings["opensm_s"] = time.monotonic() - t1
        log = (tmp / "opensm.log").read_text(errors="replace")
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:] + log[-3000:]
        problems = [ln for ln in log.splitlines()
                    if "PARSE ERROR" in ln or re.search(r"\bERR [0-9A-F]{4}\b", ln)]
        assert not problems, "\n".join(problems[:10])
        assert "Entering MASTER state" in log, log[-3000:]
        assert "SUBNET UP" in log, log[-3000:]
        used = re.findall(r"(\w+) tables configured on all switches", log)
        assert used and used[-1] == engine, f"routing engine in use {used}, chosen {engine}"
        probe = next(n.name for n in fabric.nodes if n.kind == "Hca" and n.name != "ufm")
        t2 = time.monotonic()
        disc = subprocess.run(["ibnetdiscover"], env=dict(env, SIM_HOST=probe),
                              capture_output=True, text=True, timeout=TOOL_S, check=False,
                              cwd=tmp)  # umad2sim leaves a sys-<pid> tree in its cwd
        timings["ibnetdiscover_s"] = time.monotonic() - t2
        assert disc.returncode == 0, disc.stderr[-2000:]
    links, lids, speeds = discovered(disc.stdout)
    assert links == fabric.links(), (
        f"missing {sorted(fabric.links() - links)[:5]}, extra {sorted(links - fabric.links())[:5]}")
    cas = {n.name for n in fabric.nodes if n.kind == "Hca"}
    assert set(lids) == cas
    assert all(lid > 0 for ports in lids.values() for lid in ports), "every CA port has a LID"
    assert speeds == {f"4x{fabric.speed}"}
    return timings


def test_lab_fabric_comes_up_as_planned(tmp_path: Path) -> None:
    plan = site_plan("lab")
    assert ib_fabric(plan).nodes[0].name == "ib-spine01"
    _prove(plan, tmp_path)


def test_rail_optimized_su_comes_up_with_sm_on_ufm(tmp_path: Path) -> None:
    plan = plan_of_text(tmp_path / "site", RAIL_SITE)
    fabric = ib_fabric(plan)
    assert fabric.nodes[0].name == "ufm"
    assert sum(1 for n in fabric.nodes if n.kind == "Switch" and n.tier == "leaf") == 8
    assert routing(fabric)[0] == "ftree"
    _prove(plan, tmp_path)


@pytest.mark.slow
def test_superpod_scale_fabric_comes_up(tmp_path: Path) -> None:
    """1,017 CAs (127 DGX x 8 HCAs + the UFM), 48 switches, NDR written as HDR for ibsim."""
    assert (SITES / "superpod-h100-4su").exists()
    timings = _prove(site_plan("superpod-h100-4su"), tmp_path)
    assert timings["opensm_s"] < TOOL_S
