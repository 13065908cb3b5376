"""Simulated perftest ``ib_write_bw`` / ``ib_write_lat`` (gpuctl lab hardware simulator: not
real hardware).

Semantics as the real tools: without a host argument the tool is the server and waits on TCP
(``-p``, default 18515) for one client; ``ib_write_bw [opts] SERVER`` is the client. The two
exchange one JSON line each (host, device, link rate, bandwidth baseline), then both print the
perftest report computed from both ends: line rate = the slower end's HCA rate, bandwidth =
the lower of both ends' ``ib_write_bw_gbps`` scaled by their actual rates. A Down port fails
before any connection (`` Port number 1 state is Down``), so the peer fails to connect, as with
real hardware. Every wait on the peer is bounded by ``GPUCTL_HWSIM_TIMEOUT`` (default 30 s).

Options: ``-d/--ib-dev mlx5_N``, ``-p/--port``, ``-s/--size``, ``-a/--all``, ``-n/--iters``,
``-D/--duration``, ``-q/--qp``, ``-F``, ``--report_gbits``, ``-V/--version``; ``-i -x -m -c
-t -l -Q -T -I -u --use_cuda`` and the flags ``-R -b -z -N -U -H --report-both`` are accepted.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from provision.lab.hwsim.personality import LABEL, rng
from provision.lab.hwsim.state import HostState, SimExit, load_current, socket_timeout

DEFAULT_PORT = 18515
VERSION = "6.22"
VALUE = {
    "-d": "dev",
    "--ib-dev": "dev",
    "-p": "port",
    "--port": "port",
    "-s": "size",
    "--size": "size",
    "-n": "iters",
    "--iters": "iters",
    "-D": "duration",
    "--duration": "duration",
    "-q": "qps",
    "--qp": "qps",
}
IGNORED_VALUE = {
    "-i",
    "--ib-port",
    "-x",
    "--gid-index",
    "-m",
    "--mtu",
    "-c",
    "--connection",
    "-t",
    "--tx-depth",
    "-l",
    "--post_list",
    "-Q",
    "--cq-mod",
    "-T",
    "--tos",
    "-I",
    "--inline_size",
    "-u",
    "--qp-timeout",
    "--use_cuda",
    "-w",
    "--use_cuda_bus_id",
    "-g",
    "--mcg",
}
FLAGS = {
    "-a": "all",
    "--all": "all",
    "--report_gbits": "gbits",
    "-F": "cpu_freq",
    "--CPU-freq": "cpu_freq",
}
IGNORED_FLAGS = {
    "-R",
    "--rdma_cm",
    "-b",
    "--bidirectional",
    "-z",
    "--comm_rdma_cm",
    "-N",
    "--noPeak",
    "-U",
    "--report-unsorted",
    "-H",
    "--report-histogram",
    "--report-both",
    "-e",
    "--events",
}
RULE = "-" * 87


@dataclass(frozen=True)
class Params:
    """What the client asks for; the server adopts it, like perftest's parameter exchange."""

    size: int
    all_sizes: bool
    iters: int
    duration: int
    qps: int


@dataclass(frozen=True)
class Cli:
    test: str  # "bw" or "lat"
    server: str | None
    dev: int
    port: int
    gbits: bool
    params: Params


def parse(test: str, argv: Sequence[str]) -> Cli | None:
    """perftest options; None for ``--version``; SimExit(1) on a bad option."""
    vals: dict[str, str] = {}
    flags: set[str] = set()
    hosts: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, inline = a.partition("=")
        if a in ("-V", "--version"):
            return None
        if name in VALUE or name in IGNORED_VALUE:
            if eq:
                value, i = inline, i + 1
            elif i + 1 < len(args):
                value, i = args[i + 1], i + 2
            else:
                raise SimExit(1, f" Option {a} requires an argument")
            if name in VALUE:
                vals[VALUE[name]] = value
        elif a in FLAGS:
            flags.add(FLAGS[a])
            i += 1
        elif a in IGNORED_FLAGS:
            i += 1
        elif a.startswith("-"):
            raise SimExit(1, f" Invalid command line option {a!r}\n ({LABEL})")
        else:
            hosts.append(a)
            i += 1
    if len(hosts) > 1:
        raise SimExit(1, " More than one server name given")
    dev_name = vals.get("dev", "mlx5_0")
    if not dev_name.startswith("mlx5_") or not dev_name[5:].isdigit():
        raise SimExit(
            1, f" IB device {dev_name} not found\n Unable to find the Infiniband/RoCE device"
        )
    try:
        params = Params(
            size=int(vals.get("size", "65536" if test == "bw" else "2")),
            all_sizes="all" in flags,
            iters=int(vals.get("iters", "5000" if test == "bw" else "1000")),
            duration=int(vals.get("duration", "0")),
            qps=int(vals.get("qps", "1")),
        )
        port = int(vals.get("port", str(DEFAULT_PORT)))
    except ValueError as exc:
        raise SimExit(1, f" Invalid numeric option value: {exc}") from None
    if params.size < 1 or params.iters < 1 or params.qps < 1 or params.duration < 0:
        raise SimExit(1, " Invalid size, iteration, QP or duration value")
    return Cli(test, hosts[0] if hosts else None, int(dev_name[5:]), port, "gbits" in flags, params)


def check_device(state: HostState, dev: int) -> dict[str, Any]:
    """This end's HCA facts for the exchange; SimExit like perftest when unusable."""
    if dev >= state.facts.hca_count:
        raise SimExit(
            1, f" IB device mlx5_{dev} not found\n Unable to find the Infiniband/RoCE device"
        )
    if state.hca_state(dev) != "Active":
        raise SimExit(
            1,
            " Port number 1 state is Down\n Couldn't set the link layer\n"
            " Couldn't get context for the device",
        )
    rate = state.hca_rate(dev)
    return {
        "host": state.host,
        "dev": dev,
        "rate": rate,
        "bw": state.facts.ib_write_bw_gbps * rate / state.facts.hca_rate_gbps,
        "lid": 0x10 + (int(rng(state.host, "lid", dev).random() * 0xFFF)),
    }


def _recv_line(conn: socket.socket) -> dict[str, Any]:
    buf = b""
    while b"\n" not in buf and len(buf) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    try:
        data = json.loads(buf.split(b"\n", 1)[0].decode())
    except ValueError:
        raise SimExit(1, " Failed to exchange data between server and clients") from None
    if not isinstance(data, dict):
        raise SimExit(1, " Failed to exchange data between server and clients")
    return data


def serve(cli: Cli, me: dict[str, Any]) -> tuple[dict[str, Any], Params]:
    """Wait (bounded) for one client; returns its facts and its test parameters."""
    timeout = socket_timeout()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lsock:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            lsock.bind(("0.0.0.0", cli.port))  # noqa: S104 - perftest listens on all addresses
            lsock.listen(1)
        except OSError as exc:
            raise SimExit(1, f" Couldn't bind to port {cli.port}: {exc.strerror}") from None
        # Printed once listening, so a client started on seeing it cannot be refused.
        print(
            "\n************************************\n* Waiting for client to connect... *\n"
            "************************************",
            flush=True,
        )
        lsock.settimeout(timeout)
        try:
            conn, _ = lsock.accept()
        except TimeoutError:
            raise SimExit(1, f" No client connected within {timeout:g} s ({LABEL} bound)") from None
        with conn:
            conn.settimeout(timeout)
            try:
                peer = _recv_line(conn)
                conn.sendall((json.dumps(me) + "\n").encode())
            except OSError:
                raise SimExit(1, " Failed to exchange data between server and clients") from None
    try:
        return peer, Params(**peer["params"])
    except (KeyError, TypeError):
        raise SimExit(1, " Failed to exchange data between server and clients") from None


def connect(cli: Cli, me: dict[str, Any]) -> dict[str, Any]:
    assert cli.server is not None
    try:
        with socket.create_connection((cli.server, cli.port), timeout=socket_timeout()) as conn:
            conn.sendall((json.dumps({**me, "params": asdict(cli.params)}) + "\n").encode())
            return _recv_line(conn)
    except OSError:
        raise SimExit(
            1,
            f" Couldn't connect to {cli.server}:{cli.port}\nUnable to open file "
            "descriptor for socket connection Unable to init the socket "
            "connection",
        ) from None


def header(cli: Cli, params: Params, dev: int) -> list[str]:
    bw = cli.test == "bw"
    title = "RDMA_Write BW Test" if bw else "RDMA_Write Latency Test"
    return [
        RULE,
        f"{'':20s}{title}",
        f" Dual-port       : OFF\t\tDevice         : mlx5_{dev}",
        f" Number of qps   : {params.qps}\t\tTransport type : IB",
        " Connection type : RC\t\tUsing SRQ      : OFF",
        f" PCIe relax order: {'ON' if bw else 'OFF'}",
        " ibv_wr* API     : ON",
        f" TX depth        : {128 if bw else 1}",
        *([" CQ Moderation   : 1"] if bw else []),
        " Mtu             : 4096[B]",
        " Link type       : IB",
        f" Max inline data : {0 if bw else 220}[B]",
        " rdma_cm QPs\t : OFF",
        " Data ex. method : Ethernet",
        f" Simulator       : {LABEL}",
        RULE,
    ]


def addresses(me: dict[str, Any], peer: dict[str, Any], qps: int) -> list[str]:
    lines = []
    for q in range(qps):
        for word, who in (("local", me), ("remote", peer)):
            r = rng(who["host"], who["dev"], q)
            lines.append(
                f" {word} address: LID {who['lid']:#06x} QPN {r.randint(0x100, 0xFFFF):#06x}"
                f" PSN {r.randint(0, 0xFFFFFF):#08x} RKey {r.randint(0, 0xFFFFFF):#08x}"
                f" VAddr {r.randint(1 << 44, 1 << 47):#016x}"
            )
    return lines


Table = Callable[[Cli, Params, dict[str, Any], dict[str, Any]], list[str]]


def pair_seed(me: dict[str, Any], peer: dict[str, Any], params: Params) -> str:
    """The same seed on both ends, so server and client print the same numbers."""
    ends = sorted(f"{e['host']}/mlx5_{e['dev']}" for e in (me, peer))
    return f"{ends[0]}|{ends[1]}|{params}"


def run(test: str, argv: Sequence[str], table: Table) -> int:
    """A whole perftest run: parse, check the device, meet the peer, print the report."""
    cli = parse(test, argv)
    if cli is None:
        sys.stdout.write(f"Version: {VERSION}\n({LABEL})\n")
        return 0
    state = load_current()
    me = check_device(state, cli.dev)
    if cli.server is None:
        peer, params = serve(cli, me)
    else:
        peer, params = connect(cli, me), cli.params
    lines = [
        *header(cli, params, cli.dev),
        *addresses(me, peer, params.qps),
        RULE,
        *table(cli, params, me, peer),
        RULE,
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
