"""Hardware simulator: ``ib_write_bw``/``ib_write_lat`` server and client over 127.0.0.1."""

from __future__ import annotations

import dataclasses
import os
import select
import socket
import subprocess
import time

import pytest

from provision.lab.hwsim import LABEL, default_personality
from provision.lab.hwsim.local import LocalSim

SERVER, CLIENT = "gpu-n01", "gpu-n02"
BOUND_S = 20.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> LocalSim:
    return LocalSim.create(
        tmp_path_factory.mktemp("perftest"),
        [default_personality(h) for h in (SERVER, CLIENT)],
        peer_timeout_s=BOUND_S,
    )


@pytest.fixture(autouse=True)
def _healthy(sim: LocalSim) -> None:
    sim.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(server: subprocess.Popen[str]) -> str:
    """Read the server's banner (bounded; it prints it once it listens); returns what was
    read, which ``communicate`` will not return again."""
    assert server.stdout is not None
    fd = server.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + BOUND_S
    while b"Waiting for client to connect" not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            server.kill()
            raise AssertionError(f"server did not start listening: {seen!r} {server.communicate()}")
        seen += chunk
    return seen.decode()


def pair(sim: LocalSim, tool: str, *opts: str) -> tuple[str, str]:
    """Run a server on SERVER and a client on CLIENT; both stdouts (both must succeed)."""
    port = str(free_port())
    server = sim.start(SERVER, [tool, *opts, "-p", port])
    try:
        banner = wait_listening(server)
        client = sim.run(CLIENT, [tool, *opts, "-p", port, "127.0.0.1"], timeout=BOUND_S)
        server_out, server_err = server.communicate(timeout=BOUND_S)
        server_out = banner + server_out
    finally:
        server.kill()
    assert client.returncode == 0, client.stderr
    assert server.returncode == 0, server_err
    return server_out, client.stdout


def rows(text: str) -> list[list[str]]:
    after = text.split("#bytes", 1)[1].splitlines()[1:]
    return [ln.split() for ln in after if ln.strip() and not ln.startswith("-")]


def test_bw_pair_reports_the_same_numbers_on_both_ends(sim: LocalSim) -> None:
    server_out, client_out = pair(sim, "ib_write_bw", "-d", "mlx5_3", "--report_gbits", "-F")
    assert f" Simulator       : {LABEL}" in client_out
    assert " Dual-port       : OFF\t\tDevice         : mlx5_3" in client_out
    assert (
        " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]"
        in client_out
    )
    assert rows(server_out) == rows(client_out)
    ((size, iters, peak, avg, mpps),) = rows(client_out)
    assert (size, iters) == ("65536", "5000")
    assert 185 < float(avg) <= float(peak) < 196  # HDR 200 at ~96%
    assert float(mpps) == pytest.approx(float(avg) * 1e9 / 8 / 65536 / 1e6, rel=1e-3)
    local = [ln for ln in client_out.splitlines() if "local address" in ln]
    remote = [ln for ln in server_out.splitlines() if "remote address" in ln]
    assert local[0].split(":", 1)[1] == remote[0].split(":", 1)[1]


def test_half_rate_hca_halves_bandwidth(sim: LocalSim) -> None:
    healthy = float(rows(pair(sim, "ib_write_bw", "-d", "mlx5_1", "--report_gbits")[1])[0][3])
    sim.fault(SERVER, "hca-200g", hca=1)
    slow = float(rows(pair(sim, "ib_write_bw", "-d", "mlx5_1", "--report_gbits")[1])[0][3])
    assert slow / healthy == pytest.approx(0.5, abs=0.02)
    other = float(rows(pair(sim, "ib_write_bw", "-d", "mlx5_2", "--report_gbits")[1])[0][3])
    assert other == pytest.approx(healthy, rel=0.01)


def test_sweep_duration_and_units(sim: LocalSim) -> None:
    _, out = pair(sim, "ib_write_bw", "-a", "-q", "4")
    assert "BW average[MB/sec]" in out and " Number of qps   : 4" in out
    table = rows(out)
    assert [int(r[0]) for r in table] == [1 << k for k in range(1, 24)]
    assert float(table[0][3]) < float(table[-1][3])
    assert 21000 < float(table[-1][3]) < 23500  # MB = 2^20 bytes: 192 Gb/s = 22888 MB/s
    _, out = pair(sim, "ib_write_bw", "-D", "5", "-s", "1048576", "--report_gbits")
    ((_, iters, peak, avg, _),) = rows(out)
    assert peak == "0.00" and int(iters) > 100000 and float(avg) > 180


def test_latency_pair(sim: LocalSim) -> None:
    server_out, client_out = pair(sim, "ib_write_lat", "-a")
    assert "RDMA_Write Latency Test" in client_out and "t_typical[usec]" in client_out
    table = rows(client_out)
    assert table == rows(server_out) and len(table) == 23
    assert 0.9 < float(table[0][4]) < 1.2  # 2 bytes: ~1 us
    assert float(table[-1][4]) > float(table[0][4]) + 300  # 8 MiB at 200 Gb/s: ~335 us more


def test_down_port_fails_like_perftest(sim: LocalSim) -> None:
    sim.fault(CLIENT, "hca-down", hca=0)
    proc = sim.run(CLIENT, ["ib_write_bw", "-d", "mlx5_0", "-p", str(free_port()), "127.0.0.1"])
    assert proc.returncode == 1 and "Port number 1 state is Down" in proc.stderr
    sim.clear()
    sim.fault(SERVER, "hca-down", hca=0, state="Polling")
    port = str(free_port())
    server = sim.run(SERVER, ["ib_write_bw", "-d", "mlx5_0", "-p", port], timeout=BOUND_S)
    assert server.returncode == 1 and "Couldn't set the link layer" in server.stderr
    client = sim.run(CLIENT, ["ib_write_bw", "-d", "mlx5_0", "-p", port, "127.0.0.1"])
    assert client.returncode == 1 and f"Couldn't connect to 127.0.0.1:{port}" in client.stderr
    missing = sim.run(CLIENT, ["ib_write_bw", "-d", "mlx5_8", "127.0.0.1"])
    assert missing.returncode == 1 and "IB device mlx5_8 not found" in missing.stderr


def test_server_wait_is_bounded(sim: LocalSim) -> None:
    quick = dataclasses.replace(sim, peer_timeout_s=1.0)
    started = time.monotonic()
    proc = quick.run(SERVER, ["ib_write_bw", "-p", str(free_port())], timeout=BOUND_S)
    assert proc.returncode == 1 and "No client connected within 1 s" in proc.stderr
    assert time.monotonic() - started < 10
