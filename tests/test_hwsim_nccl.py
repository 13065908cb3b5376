"""Hardware simulator: nccl-tests tables, single-node and through the fake ``mpirun``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provision.lab.hwsim import LABEL, default_personality
from provision.lab.hwsim.local import LocalSim

ROW = re.compile(
    r"^\s*(\d+)\s+(\d+)\s+(\w+)\s+(\w+)\s+(-?\d+)"
    r"(?:\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+|N/A)){2}\s*$"
)
HOSTS = ("gpu-n01", "gpu-n02", "gpu-n03")
TWO = [
    "mpirun",
    "-np",
    "16",
    "--host",
    "gpu-n01:8,gpu-n02:8",
    "--allow-run-as-root",
    "-x",
    "NCCL_DEBUG=WARN",
    "--mca",
    "btl",
    "^openib",
    "all_reduce_perf",
    "-b",
    "8",
    "-e",
    "8G",
    "-f",
    "2",
    "-g",
    "1",
]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> LocalSim:
    return LocalSim.create(tmp_path_factory.mktemp("nccl"), [default_personality(h) for h in HOSTS])


@pytest.fixture(autouse=True)
def _healthy(sim: LocalSim) -> None:
    sim.clear()


def table(text: str) -> list[tuple[int, float]]:
    """(size, out-of-place busbw) of each row; every non-comment line must be a row."""
    rows = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = ROW.match(line)
        assert m, f"not an nccl-tests row: {line!r}"
        rows.append((int(m.group(1)), float(line.split()[7])))
    return rows


def peak(sim: LocalSim, argv: list[str], host: str = "gpu-n01") -> float:
    code, out, err = sim.call(host, argv)
    assert code == 0, err
    return max(bw for _, bw in table(out))


def test_single_node_all_reduce_format(sim: LocalSim) -> None:
    proc = sim.run("gpu-n01", ["all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g", "8"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("# nccl-tests version 2.")
    assert lines[1] == "# Collective test starting: all_reduce_perf"
    assert lines[2] == (
        "# nThread 1 nGpus 8 minBytes 8 maxBytes 8589934592 step: 2(factor) "
        "warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0"
    )
    assert lines[3] == f"# {LABEL}"
    ranks = [ln for ln in lines if ln.startswith("#  Rank")]
    assert len(ranks) == 8 and ranks[7].endswith("[0000:db:00] NVIDIA H100 80GB HBM3")
    assert (
        "#       size         count      type   redop    root     time   algbw   busbw "
        "#wrong     time   algbw   busbw #wrong" in lines
    )
    rows = table(proc.stdout)
    assert [size for size, _ in rows] == [8 << k for k in range(31)]
    assert 440 < rows[-1][1] < 480  # personality baseline 470 GB/s
    assert lines[-3] == "# Out of bounds values : 0 OK"
    assert re.match(r"^# Avg bus bandwidth    : [\d.]+ $", lines[-2])
    assert (
        proc.stdout
        == sim.run(
            "gpu-n01", ["all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g", "8"]
        ).stdout
    )  # deterministic


def test_all_to_all_and_options(sim: LocalSim) -> None:
    code, out, _ = sim.call(
        "gpu-n01", ["all_to_all_perf", "-b", "1K", "-e", "1G", "-f", "4", "-g", "8", "-c", "0"]
    )
    assert code == 0
    assert sim.call(
        "gpu-n01", ["alltoall_perf", "-b", "1K", "-e", "1G", "-f", "4", "-g", "8", "-c", "0"]
    )[1] == out.replace("starting: all_to_all_perf", "starting: alltoall_perf")
    rows = [ln.split() for ln in out.splitlines() if not ln.startswith("#")]
    assert rows[0][:5] == ["1024", "32", "float", "none", "-1"] and rows[0][8] == "N/A"
    assert len(rows) == 11 and "validation: 0" in out
    code, _, err = sim.call("gpu-n01", ["all_reduce_perf", "--bogus"])
    assert code == 1 and "USAGE: all_reduce_perf" in err


def test_multi_node_report_names_each_host(sim: LocalSim) -> None:
    proc = sim.run("gpu-n01", TWO)
    assert proc.returncode == 0, proc.stderr
    ranks = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("#  Rank")]
    assert [r[8] for r in ranks] == ["gpu-n01"] * 8 + ["gpu-n02"] * 8
    assert [r[10] for r in ranks[8:]] == [str(i) for i in range(8)]
    assert ranks[15][2] == "15"
    busbw = max(bw for _, bw in table(proc.stdout))
    assert 170 < busbw < 190  # 8 x HDR 200 Gb/s per node = 200 GB/s x 0.92
    hostfile = Path(sim.sim_dir.parent / "hostfile")
    hostfile.write_text("gpu-n01 slots=8\ngpu-n02 slots=8\n")
    same = sim.run(
        "gpu-n01",
        [
            "mpirun",
            "-np",
            "16",
            "--hostfile",
            str(hostfile),
            "/opt/nccl-tests/build/all_reduce_perf",
            "-b",
            "8",
            "-e",
            "8G",
            "-f",
            "2",
            "-g",
            "1",
        ],
    )
    assert same.stdout == proc.stdout


def test_slowest_node_limits_the_collective(sim: LocalSim) -> None:
    healthy = peak(sim, TWO)
    single = peak(
        sim, ["all_reduce_perf", "-b", "1G", "-e", "8G", "-f", "2", "-g", "8"], host="gpu-n03"
    )
    sim.fault("gpu-n02", "slow-nccl")
    assert 0.38 < peak(sim, TWO) / healthy < 0.62
    # the slow node is not part of gpu-n03's own run
    assert (
        peak(sim, ["all_reduce_perf", "-b", "1G", "-e", "8G", "-f", "2", "-g", "8"], host="gpu-n03")
        == single
    )
    sim.clear()
    sim.fault("gpu-n02", "hca-200g", hca=5)  # one rail at 100: NCCL waits for the slowest
    assert 0.45 < peak(sim, TWO) / healthy < 0.55
    sim.clear()
    sim.fault("gpu-n02", "hca-down", hca=5)  # 7 of 8 rails
    assert 0.83 < peak(sim, TWO) / healthy < 0.92


def test_failures_look_like_the_real_tools(sim: LocalSim) -> None:
    sim.fault("gpu-n02", "gpu-missing", gpu=0)
    code, out, err = sim.call("gpu-n01", TWO)
    assert code == 1 and "\n# nThread 1 nGpus 1 " in out
    assert "gpu-n02: Test CUDA failure" in err and "invalid device ordinal" in err
    code, _, err = sim.call(
        "gpu-n01", ["mpirun", "-np", "16", "--host", "gpu-n01:8,gpu-n99:8", "all_reduce_perf"]
    )
    assert code == 1 and "Could not resolve hostname gpu-n99" in err
    code, _, err = sim.call(
        "gpu-n01", ["mpirun", "-np", "32", "--host", "gpu-n01:8,gpu-n03:8", "all_reduce_perf"]
    )
    assert code == 1 and "not enough slots" in err
    code, _, err = sim.call(
        "gpu-n01", ["mpirun", "-np", "2", "--host", "gpu-n01,gpu-n03", "hostname"]
    )
    assert code == 1 and "unable to launch" in err
    code, _, err = sim.call("gpu-n01", ["mpirun", "--frobnicate", "all_reduce_perf"])
    assert code == 1 and 'unknown option "--frobnicate"' in err
