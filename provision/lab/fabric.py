"""The lab's InfiniBand fabric: ibsim (remote mode) plus OpenSM through umad2sim.

ibsim talks to its clients over abstract unix sockets by default, and those are per network
namespace, so the lab runs it in remote (UDP) mode: clients anywhere in the lab reach it at
the bridge address (``IBSIM_SERVER_NAME``/``IBSIM_SERVER_PORT``). ibsim binds the control
port and the next 10 (one per client slot) on all addresses.

One OpenSM per subnet: a net file may hold several independent subnets (a multi-plane
fabric); each connected part gets its own OpenSM, attached (``SIM_HOST``) at the part's first
node in file order -- for the whole file that is ibsim's default port, where a plan puts its
subnet manager. Each SM keeps its files in ``fabric/sm<i>/`` (opensm.log, opensm.out, tmp/,
cache/).
"""

from __future__ import annotations

import os
import random
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from provision.errors import LabError
from provision.lab.hostfs import UMAD2SIM
from provision.lab.proc import alive, log_tail, spawn, wait_for
from provision.lab.state import LabPaths, ProcRecord

IBSIM_CLIENT_SLOTS = 10
_PORT_TRIES = 50
_STATE_RE = re.compile(r"Entering (\w+) state")


def free_udp_base(count: int = IBSIM_CLIENT_SLOTS + 1) -> int:
    """A base port with ``count`` consecutive UDP ports free on all addresses."""
    rng = random.Random()
    for _ in range(_PORT_TRIES):
        base = rng.randrange(20000, 60000 - count)
        socks: list[socket.socket] = []
        try:
            for offset in range(count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("0.0.0.0", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise LabError(f"lab fabric: no {count} consecutive free UDP ports found")


def render_opensm_conf(conf: str, files: Mapping[str, str], directory: Path) -> str:
    """Point ``key <bare file name>`` lines at the written files' absolute paths."""
    out = []
    for line in conf.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and not parts[0].startswith("#") and parts[1].strip() in files:
            line = f"{parts[0]} {directory / parts[1].strip()}"
        out.append(line)
    return "\n".join(out) + "\n"


def write_files(paths: LabPaths, *, net: str, opensm_conf: str,
                opensm_files: Mapping[str, str]) -> None:
    fdir = paths.fabric_dir
    fdir.mkdir(parents=True, exist_ok=True)
    (fdir / "ibsim.net").write_text(net)
    for name, text in opensm_files.items():
        (fdir / name).write_text(text)
    (fdir / "opensm.conf").write_text(render_opensm_conf(opensm_conf, opensm_files, fdir))


def client_env(server: str, port: int, sim_host: str | None = None,
               base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a libibumad tool to talk to the lab's ibsim as ``sim_host``."""
    env = dict(os.environ if base is None else base)
    env.update({"LD_PRELOAD": UMAD2SIM, "IBSIM_SERVER_NAME": server,
                "IBSIM_SERVER_PORT": str(port)})
    if sim_host is not None:
        env["SIM_HOST"] = sim_host
    else:
        env.pop("SIM_HOST", None)
    return env


def start_ibsim(paths: LabPaths, port: int) -> ProcRecord:
    fdir = paths.fabric_dir
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return spawn(["ibsim", "-s", "-r", "-l", str(port), "-n", str(fdir / "ibsim.net")],
                 label="lab fabric: ibsim", log=fdir / "ibsim.log", env=env)


def wait_ibsim(paths: LabPaths, proc: ProcRecord, *, timeout: float = 15.0) -> None:
    log = paths.fabric_dir / "ibsim.log"

    def ready() -> bool | None:
        try:
            return True if "Network simulator ready" in log.read_text(errors="replace") else None
        except OSError:
            return None

    def died() -> str | None:
        if alive(proc):
            return None
        return f"lab fabric: ibsim exited: {log_tail(log, 2, prefer=('ibwarn:', 'ibpanic:'))}"

    wait_for(ready, timeout=timeout, fail=died,
             what="lab fabric: ibsim did not load the net file")


@dataclass(frozen=True)
class Subnet:
    """One connected part of the net file: where its SM runs and a CA to probe it from."""

    sm_node: str
    probe_node: str  # first CA of the subnet (the SM node when it has none)
    nodes: int


_RECORD_RE = re.compile(r'^\s*(Switch|Hca|Ca)\s+\d+\s+"([^"]+)"')
_LINK_RE = re.compile(r'^\s*\[\d+\]\s*"([^"]+)"\s*\[\d+\]')


def subnets(net: str) -> list[Subnet]:
    """The net file's connected parts, in the order of their first node."""
    parent: dict[str, str] = {}
    kinds: dict[str, str] = {}

    def find(node: str) -> str:
        root = parent.setdefault(node, node)
        while root != parent[root]:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    current: str | None = None
    for line in net.splitlines():
        if m := _RECORD_RE.match(line):
            current = m.group(2)
            kinds[current] = m.group(1)
            find(current)
        elif current is not None and (m := _LINK_RE.match(line)):
            a, b = find(current), find(m.group(1))
            if a != b:
                parent[b] = a
    parts: dict[str, list[str]] = {}
    for node in kinds:  # insertion order == file order
        parts.setdefault(find(node), []).append(node)
    result = []
    for members in parts.values():
        cas = [n for n in members if kinds[n] != "Switch"]
        result.append(Subnet(sm_node=members[0], probe_node=cas[0] if cas else members[0],
                             nodes=len(members)))
    return result


def sm_dir(paths: LabPaths, index: int) -> Path:
    return paths.fabric_dir / f"sm{index}"


def start_opensm(paths: LabPaths, index: int, subnet: Subnet, *, server: str,
                 port: int) -> ProcRecord:
    """OpenSM for one subnet, attached at its SM node, its files in ``fabric/sm<i>/``."""
    sdir = sm_dir(paths, index)
    for sub in ("tmp", "cache"):
        (sdir / sub).mkdir(parents=True, exist_ok=True)
    env = client_env(server, port, subnet.sm_node)
    env.update({"OSM_TMP_DIR": str(sdir / "tmp"), "OSM_CACHE_DIR": str(sdir / "cache")})
    argv = ["opensm", "-F", str(paths.fabric_dir / "opensm.conf"),
            "-f", str(sdir / "opensm.log"), "-d", "2"]
    return spawn(argv, label=f"lab fabric: opensm on {subnet.sm_node!r}",
                 log=sdir / "opensm.out", env=env)


def sm_state(log: Path) -> tuple[str | None, bool]:
    """(last state OpenSM entered, whether it reported SUBNET UP) from its log."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None, False
    states = _STATE_RE.findall(text)
    return (states[-1] if states else None), "SUBNET UP" in text


def wait_subnet_up(log: Path, proc: ProcRecord, *, timeout: float = 20.0) -> None:
    def up() -> bool | None:
        state, subnet_up = sm_state(log)
        return True if subnet_up and state == "MASTER" else None

    def died() -> str | None:
        if alive(proc):
            return None
        return f"{proc.label} exited: {log_tail(log.with_name('opensm.out'), 2)}"

    wait_for(up, timeout=timeout, interval=0.05, fail=died,
             what=f"{proc.label} did not reach SUBNET UP / MASTER")
