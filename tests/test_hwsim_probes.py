"""The simulator's outputs read by the burn-in probes: the exact command each probe builds,
run against the simulator, parsed by the probe's own parser, with and without faults.

Skipped when ``provision.burnin.probes`` (another part of gpuctl) is not there."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from provision.lab.hwsim import default_personality
from provision.lab.hwsim.local import LocalSim

probes = pytest.importorskip("provision.burnin.probes")
KINDS: dict[str, Any] = probes.KINDS
COMMANDS: dict[str, Any] = {
    "nvidia-smi-xml": probes.nvidia_smi_xml.command, "nvidia-smi-q": probes.nvidia_smi_q.command,
    "nvidia-smi-csv": probes.nvidia_smi_csv.command, "nvlink": probes.nvlink.command,
    "xid": probes.xid.command, "dcgmi-diag": probes.dcgmi_diag.command,
    "ibstat": probes.infiniband.ibstat_command, "ibstatus": probes.infiniband.ibstatus_command,
    "lspci": probes.lspci.command, "ib-write-bw": probes.perftest.write_bw_command,
    "ib-write-lat": probes.perftest.write_lat_command, "nccl": probes.nccl.command,
}
"""Probe kind -> the command builder whose argv the simulator runs."""
HOSTS = ("gpu-n01", "gpu-n02")


def kind(name: str) -> tuple[Any, Any]:
    if name not in KINDS or name not in COMMANDS:
        pytest.skip(f"probe kind {name!r} not available")
    return COMMANDS[name], KINDS[name]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> LocalSim:
    return LocalSim.create(
        tmp_path_factory.mktemp("probes"),
        [default_personality(h) for h in HOSTS],
        peer_timeout_s=20.0,
    )


@pytest.fixture(autouse=True)
def _healthy(sim: LocalSim) -> None:
    sim.clear()


def probe(sim: LocalSim, name: str, *args: Any, host: str = "gpu-n01", **kw: Any) -> Any:
    command, parse = kind(name)
    code, out, err = sim.call(host, command(*args, **kw))
    assert out, f"{name}: no output (exit {code}): {err}"
    return parse(out)


@pytest.mark.parametrize("name", ["nvidia-smi-xml", "nvidia-smi-q", "nvidia-smi-csv"])
def test_nvidia_smi_reports(sim: LocalSim, name: str) -> None:
    report = probe(sim, name)
    assert len(report.gpus) == 8 and not report.partial
    gpu = report.gpus[2]
    assert gpu.name == "NVIDIA H100 80GB HBM3" and gpu.pci_bus_id == "00000000:3A:00.0"
    assert gpu.ecc_volatile.uncorrected == 0 and gpu.remapped_rows.pending is False
    assert gpu.pcie.gen_current == 5 and gpu.power_limit_w == 700.0
    sim.fault("gpu-n01", "ecc", gpu=2)
    sim.fault("gpu-n01", "gpu-missing", gpu=7)
    report = probe(sim, name)
    assert len(report.gpus) == 7
    assert report.gpus[2].ecc_volatile.uncorrected > 0
    assert report.gpus[2].remapped_rows.pending is True
    assert [g.ecc_volatile.uncorrected for g in report.gpus].count(0) == 6


def test_nvlink(sim: LocalSim) -> None:
    report = probe(sim, "nvlink")
    assert len(report.gpus) == 8 and all(len(g.links) == 18 for g in report.gpus)
    assert all(link.active and link.speed_gbps == 26.562 for link in report.gpus[0].links)
    sim.fault("gpu-n01", "nvlink-down", gpu=3)
    report = probe(sim, "nvlink")
    assert [g.all_inactive for g in report.gpus] == [i == 3 for i in range(8)]


def test_xid(sim: LocalSim) -> None:
    assert probe(sim, "xid").xids == ()
    sim.fault("gpu-n01", "xid", gpu=1, xid=79)
    sim.fault("gpu-n01", "xid", gpu=4, xid=48)
    xids = probe(sim, "xid").xids
    assert [(x.xid, x.pci) for x in xids] == [(79, "0000:2a:00"), (48, "0000:9a:00")]
    assert all(x.timestamp for x in xids)


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_dcgmi_diag(sim: LocalSim, level: int) -> None:
    command, parse = kind("dcgmi-diag")
    argv = command()
    argv[argv.index("-r") + 1] = str(level)
    diag = parse(sim.call("gpu-n01", argv)[1])
    assert diag.schema and diag.driver_version == "535.161.08"
    assert diag.tests and all(t.status == "Pass" for t in diag.tests)
    sim.fault("gpu-n01", "dcgm-fail", gpu=6)
    code, out, _ = sim.call("gpu-n01", argv)
    failed = [(t.name, r.gpu) for t in parse(out).tests for r in t.results if r.status == "Fail"]
    assert code == 1 and failed == [("memory" if level >= 2 else "software", 6)]


def test_ibstat(sim: LocalSim) -> None:
    report = probe(sim, "ibstat")
    assert [ca.name for ca in report.cas] == sorted(f"mlx5_{i}" for i in range(8))
    assert all(ca.ports[0].state == "Active" and ca.ports[0].rate_gbps == 200 for ca in report.cas)
    sim.fault("gpu-n01", "hca-down", hca=2, state="Polling")
    sim.fault("gpu-n01", "hca-200g", hca=5)
    ports = {ca.name: ca.ports[0] for ca in probe(sim, "ibstat").cas}
    assert (ports["mlx5_2"].state, ports["mlx5_2"].physical_state) == ("Down", "Polling")
    assert ports["mlx5_5"].rate_gbps == 100 and ports["mlx5_4"].rate_gbps == 200


def test_nccl_single_and_multi_node(sim: LocalSim) -> None:
    command, parse = kind("nccl")
    argv = command()
    multi = ["mpirun", "-np", "16", "--host", "gpu-n01:8,gpu-n02:8", *argv]
    result = parse(sim.call("gpu-n01", multi)[1])
    assert len(result.ranks) == 16 and {r.host for r in result.ranks} == set(HOSTS)
    assert result.out_of_bounds_ok and result.wrong_rows == 0
    healthy = probes.nccl.large_message_busbw(result)
    assert healthy is not None and 150 < healthy < 190
    sim.fault("gpu-n02", "slow-nccl", percent=50)
    slow = probes.nccl.large_message_busbw(parse(sim.call("gpu-n01", multi)[1]))
    assert slow == pytest.approx(healthy / 2, rel=0.05)
    single = [a if a != "1" or argv[i - 1] != "-g" else "8" for i, a in enumerate(argv)]
    result = parse(sim.call("gpu-n02", single)[1])
    assert len(result.ranks) == 8 and result.gpus_per_thread == 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("name", ["ib-write-bw", "ib-write-lat"])
def test_perftest_pair(sim: LocalSim, name: str) -> None:
    command, parse = kind(name)
    port = _free_port()
    server = sim.start("gpu-n01", command("mlx5_4", port=port))
    try:
        assert server.stdout is not None
        for _ in range(4):  # the banner is printed once the server listens
            if "Waiting for client" in server.stdout.readline():
                break
        client = sim.run("gpu-n02", command("mlx5_4", "127.0.0.1", port=port), timeout=20)
        server.communicate(timeout=20)
    finally:
        server.kill()
    assert client.returncode == 0, client.stderr
    result = parse(client.stdout)
    assert result.header.device == "mlx5_4" and result.rows
    if name == "ib-write-bw":
        assert 185 < result.rows[0].bw_average_gbps < 196
    else:
        assert 0.9 < (result.rows[0].t_typical_us or 0) < 1.2
