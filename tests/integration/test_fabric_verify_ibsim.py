"""``gpuctl fabric verify`` against a real simulated fabric: ibsim + the real ibnetdiscover.

The planned fabric's net file (``render.ibsim.ibsim_net``) is edited to inject faults, ibsim
loads it (remote mode on a free UDP port, so tests and a running lab never share a
simulator), ``ibnetdiscover`` runs through umad2sim attached as one host HCA, and verify must
report exactly the injected faults, no more and no fewer. Root, ibsim and infiniband-diags
are needed; every wait is bounded and ibsim is always stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.execute.ibdiscover import run_ibnetdiscover
from provision.fabric.expected import expected_fabric, parse_scope
from provision.fabric.findings import VerifyResult
from provision.fabric.netedit import NetFile
from provision.fabric.topology import parse_topology
from provision.fabric.verify import verify
from provision.lab.fabric import free_udp_base
from provision.plan.build import Plan
from provision.plan.load import load_and_plan
from provision.render.ibsim import ibsim_net, ibsim_sizes, synthetic_guids

ROOT = Path(__file__).resolve().parents[2]
LAB_SITE = ROOT / "inventory" / "sites" / "lab"
UMAD2SIM = "/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so"
READY_TIMEOUT_S = 20.0
TOOL_TIMEOUT_S = 30.0


def _sim_available() -> bool:
    tools = shutil.which("ibsim") and (shutil.which("ibnetdiscover")
                                       or os.path.exists("/usr/sbin/ibnetdiscover"))
    return bool(os.geteuid() == 0 and tools and os.path.exists(UMAD2SIM))




@contextlib.contextmanager
def simulated(net: str, workdir: Path, sizes: dict[str, int] | None = None
              ) -> Iterator[dict[str, str]]:
    """Run ibsim on ``net``; yield the client environment (without SIM_HOST)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "ibsim.net").write_text(net)
    port = free_udp_base()
    argv = ["ibsim", "-s", "-r", "-l", str(port), "-n"]
    if sizes:
        argv += ["-N", str(max(2048, sizes["nodes"])), "-S", str(max(256, sizes["switches"])),
                 "-P", str(max(13312, sizes["ports"]))]
    argv.append(str(workdir / "ibsim.net"))
    log = workdir / "ibsim.log"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "Network simulator ready" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ibsim did not start: {log.read_text()[-400:]}")
            time.sleep(0.05)
        yield {"LD_PRELOAD": UMAD2SIM, "IBSIM_SERVER_NAME": "127.0.0.1",
               "IBSIM_SERVER_PORT": str(port)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def capture(plan: Plan, net: str, workdir: Path, sim_host: str,
            tool: str = "ibnetdiscover") -> str:
    """The real tool's output on the simulated fabric of ``net``."""
    with simulated(net, workdir, ibsim_sizes(plan)) as env:
        env = {**env, "SIM_HOST": sim_host}
        if tool == "ibnetdiscover":
            return run_ibnetdiscover(timeout=TOOL_TIMEOUT_S, extra_env=env)
        full = {**os.environ, **env}
        done = subprocess.run([shutil.which(tool) or f"/usr/sbin/{tool}"], env=full,
                              capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
                              check=True)
        return done.stdout


def findings_of(result: VerifyResult) -> set[tuple[str, tuple[str, ...]]]:
    return {(f.kind, f.cables) for f in result.findings}


RAIL_SITE = """\
site:
  name: rail1su
  location: gpuctl integration test
  climate: temperate
  power_capacity_mw: 0.5
  pue_target: 1.3
  electricity_price_per_kwh: 0.12
  currency: USD
  domain: rail1su.gpuctl.test
halls:
  - name: h1
    power_capacity_kw: 300
    rows:
      - {name: a, racks: 6, y_m: 0, rack: {size_u: 48, power_kw: 36, cooling: air, pdus: 4}}
node_groups:
  - name: gpu
    type: dgx-a100
    count: 20
    hostname: "gpu-{index:02d}"
    placement: {hall: h1, rows: [a], nodes_per_rack: 4, u_positions: [2, 8, 14, 20]}
fabrics:
  compute:
    topology: rail-optimized
    switch: qm8700
    speed: HDR
    node_groups: [gpu]
    su_size: 20
    ufm_ports: 0
    network_racks: [a06]
  inband: {switch: sn4600c}
  oob: {switch: mgmt-1g-48, spine_switch: sn2201, network_racks: [a06], pairs_in_one_rack: true}
addressing:
  inband: 10.210.0.0/20
  oob: 10.210.16.0/20
  switch_mgmt: 10.210.32.0/22
  ipoib: [10.210.64.0/18]
  pod_cidr: 10.244.0.0/16
  service_cidr: 10.96.0.0/16
software:
  os: ubuntu-24.04
  driver_branch: 580
  driver_version: 580.95.05
  cuda: "13.0"
  nccl: 2.28.3
  doca_ofed: 3.1.0
  dcgm: 4.4.1
  kubernetes: "1.33"
burnin:
  profile: a100-hdr
"""

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not _sim_available(),
                       reason="needs root, ibsim (ibsim-utils) and ibnetdiscover"),
]


@pytest.fixture(scope="module")
def lab_plan() -> Plan:
    return load_and_plan(LAB_SITE)[1]


@pytest.fixture(scope="module")
def rail_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("rail1su") / "site.yaml"
    site.write_text(textwrap.dedent(RAIL_SITE))
    return site


def test_lab_clean_fabric_verifies_and_learns_the_guids(lab_plan: Plan, tmp_path: Path) -> None:
    text = capture(lab_plan, ibsim_net(lab_plan), tmp_path, "lab-gpu-02 mlx5_3")
    result = verify(parse_topology(text), expected_fabric(lab_plan))
    assert result.ok and result.findings == []
    assert result.matched == len(lab_plan.fabrics["compute"].links)
    assert result.guids == synthetic_guids(lab_plan)


def test_lab_injected_faults_are_found_exactly(lab_plan: Plan, tmp_path: Path) -> None:
    net = NetFile(ibsim_net(lab_plan))
    net.swap(("lab-gpu-01 mlx5_0", 1), ("lab-gpu-02 mlx5_0", 1))   # two host cables
    net.drop(("ib-leaf001", 21))                                   # a leaf-spine cable
    net.move(("lab-gpu-03 mlx5_1", 1), ("ib-leaf002", 15))         # onto the other leaf
    net.set_rate(("lab-gpu-04 mlx5_2", 1), "1xHDR")                # one lane
    net.set_rate(("lab-gpu-04 mlx5_3", 1), "4xEDR")                # slower than planned
    text = capture(lab_plan, net.text(), tmp_path, "lab-gpu-01 mlx5_1")
    result = verify(parse_topology(text), expected_fabric(lab_plan))
    assert findings_of(result) == {
        ("swapped", ("IB:lab-gpu-01:mlx5_0", "IB:lab-gpu-02:mlx5_0")),
        ("missing", ("IB:ib-leaf001:21",)),
        ("wrong-leaf", ("IB:lab-gpu-03:mlx5_1",)),
        ("wrong-width", ("IB:lab-gpu-04:mlx5_2",)),
        ("wrong-speed", ("IB:lab-gpu-04:mlx5_3",)),
    }
    assert not result.ok


def test_rail_su_injected_faults_are_found_exactly(rail_site: Path, tmp_path: Path) -> None:
    plan = load_and_plan(rail_site)[1]
    assert len({s.name for s in plan.fabrics["compute"].switches}) == 12
    net = NetFile(ibsim_net(plan))
    net.swap(("gpu-03 mlx5_2", 1), ("gpu-04 mlx5_2", 1))       # at the rail-2 leaf
    net.drop(("ib-su01-leaf06", 25))                           # a leaf-spine cable
    net.move(("gpu-07 mlx5_4", 1), ("ib-su01-leaf06", 25))     # onto mlx5_5's leaf
    net.set_rate(("gpu-11 mlx5_0", 1), "1xHDR")
    net.set_rate(("ib-su01-leaf08", 40), "4xEDR")
    for i, sw in enumerate(s.name for s in plan.fabrics["compute"].switches):
        net.describe(sw, f"MF0;sw-{i:02d}:MQM8700/U1")          # names come from cabling
    text = capture(plan, net.text(), tmp_path, "gpu-01 mlx5_0")
    result = verify(parse_topology(text), expected_fabric(plan))
    assert findings_of(result) == {
        ("swapped", ("IB:gpu-03:mlx5_2", "IB:gpu-04:mlx5_2")),
        ("missing", ("IB:ib-su01-leaf06:25",)),
        ("wrong-leaf", ("IB:gpu-07:mlx5_4",)),
        ("wrong-width", ("IB:gpu-11:mlx5_0",)),
        ("wrong-speed", ("IB:ib-su01-leaf08:40",)),
    }
    assert len(result.inferred) == 12
    guids = synthetic_guids(plan)
    assert all(result.guids[name] == guids[name] for name in result.inferred)


def test_rail_su_partial_build_in_scope(rail_site: Path, tmp_path: Path) -> None:
    plan = load_and_plan(rail_site)[1]
    net = NetFile(ibsim_net(plan))
    for n in range(9, 21):                                     # racks a03..a05 not cabled
        for r in range(8):
            net.drop((f"gpu-{n:02d} mlx5_{r}", 1))
    text = capture(plan, net.text(), tmp_path, "gpu-01 mlx5_0")
    exp = expected_fabric(plan)
    inside = verify(parse_topology(text), exp, parse_scope(["rack=a01,a02"], exp))
    assert inside.ok
    assert {f.kind for f in inside.findings} == {"not-yet-present"}
    assert len(inside.findings) == 12 * 8
    everything = verify(parse_topology(text), exp)
    assert {f.kind for f in everything.findings} == {"missing"} and not everything.ok


def test_cli_live_runs_ibnetdiscover_through_umad2sim(lab_plan: Plan, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    net = NetFile(ibsim_net(lab_plan))
    net.swap(("lab-gpu-03 mlx5_5", 1), ("lab-gpu-03 mlx5_6", 1))
    site = tmp_path / "site"
    shutil.copytree(LAB_SITE, site, ignore=shutil.ignore_patterns("generated",
                                                                   "discovered_guids.json"))
    with simulated(net.text(), tmp_path / "sim") as env:
        for key, value in {**env, "SIM_HOST": "lab-gpu-01 mlx5_0"}.items():
            monkeypatch.setenv(key, value)
        got = CliRunner().invoke(cli, ["fabric", "verify", str(site), "--live", "--format",
                                       "json", "--write-guids", "--timeout", "30"])
    assert got.exit_code == 1, got.output
    out = json.loads(got.stdout)
    assert [(f["kind"], f["cables"]) for f in out["findings"]] == [
        ("swapped", ["IB:lab-gpu-03:mlx5_5", "IB:lab-gpu-03:mlx5_6"])]
    written = json.loads((site / "discovered_guids.json").read_text())
    assert written == synthetic_guids(lab_plan)
