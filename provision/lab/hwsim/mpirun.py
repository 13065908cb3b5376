"""Simulated Open MPI ``mpirun`` for nccl-tests (gpuctl lab hardware simulator: not real hardware).

It launches nothing: it reads every participant's personality and faults from the shared
simulator directory and prints the multi-node nccl-tests report that rank 0 would print, with
one rank line per GPU naming its host. Supported: ``-np/-n N``, ``--host/-H h1:8,h2:8``,
``--hostfile/--machinefile FILE`` (``host``, ``host slots=N`` or ``host:N`` lines),
``-npernode/--npernode/-N K``, ``--map-by ppr:K:node``, ``-x VAR[=V]``, ``--mca K V``,
``--bind-to X``, ``--prefix P`` and the flags ``--allow-run-as-root``, ``--oversubscribe``,
``--tag-output``, ``--report-bindings``, ``-q``; the program must be ``all_reduce_perf``,
``all_to_all_perf`` or ``alltoall_perf`` (any path). Ranks fill hosts in order, up to each host's slots.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import LabError
from provision.lab.hwsim.nccl import PROGRAMS, parse, render
from provision.lab.hwsim.personality import LABEL
from provision.lab.hwsim.state import HostState, SimExit, run_tool, sim_dir_from_env

VALUE_OPTS = {
    "-x",
    "--bind-to",
    "-bind-to",
    "--prefix",
    "--rank-by",
    "-rank-by",
    "--output-filename",
    "--wdir",
    "-wdir",
    "--timeout",
}
FLAGS = {
    "--allow-run-as-root",
    "--oversubscribe",
    "-oversubscribe",
    "--tag-output",
    "-tag-output",
    "--report-bindings",
    "-report-bindings",
    "-q",
    "--quiet",
    "-v",
    "--display-map",
    "--display-allocation",
    "--noprefix",
    "--use-hwthread-cpus",
}


@dataclass
class Launch:
    np: int | None = None
    npernode: int | None = None
    hosts: list[tuple[str, int | None]] = field(default_factory=list)
    from_hostfile: bool = False
    program: str = ""
    args: list[str] = field(default_factory=list)


def _hostfile(path: str) -> list[tuple[str, int | None]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SimExit(
            1, f"mpirun: Open MPI was unable to open the hostfile: {path} ({exc.strerror})"
        ) from None
    hosts: list[tuple[str, int | None]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^(\S+?)(?::(\d+))?(?:\s+(?:slots|max_slots)=(\d+).*)?$", line)
        if not m:
            raise SimExit(1, f"mpirun: unreadable hostfile line {raw!r} in {path}")
        slots = m.group(2) or m.group(3)
        hosts.append((m.group(1), int(slots) if slots else None))
    return hosts


def parse_launch(argv: Sequence[str]) -> Launch:
    args = list(argv)
    out = Launch()
    i = 0

    def value() -> str:
        if i + 1 >= len(args):
            raise SimExit(1, f"mpirun: Error: option {args[i]!r} needs a value")
        return args[i + 1]

    def number() -> int:
        text = value()
        if not text.isdigit():
            raise SimExit(1, f"mpirun: Error: option {args[i]!r} needs a number, not {text!r}")
        return int(text)

    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a in ("-np", "-n", "-c", "--np"):
            out.np = number()
        elif a in ("--host", "-host", "-H"):
            for item in value().split(","):
                name, _, slots = item.partition(":")
                out.hosts.append((name, int(slots) if slots.isdigit() else None))
        elif a in (
            "--hostfile",
            "-hostfile",
            "--machinefile",
            "-machinefile",
            "--default-hostfile",
        ):
            out.hosts.extend(_hostfile(value()))
            out.from_hostfile = True
        elif a in ("-npernode", "--npernode", "-N"):
            out.npernode = number()
        elif a in ("--map-by", "-map-by"):
            m = re.match(r"ppr:(\d+):node", value())
            if m:
                out.npernode = int(m.group(1))
        elif a in ("--mca", "-mca", "--gmca"):
            i += 1
        elif a in VALUE_OPTS:
            value()
        elif a in ("-V", "--version"):
            out.program = "--version"
            return out
        elif a not in FLAGS:
            raise SimExit(
                1, f"mpirun: Error: unknown option \"{a}\"\nType 'mpirun --help' for usage."
            )
        i += 1 if a in FLAGS else 2
    if i >= len(args):
        raise SimExit(1, "mpirun: Error: No executable was specified on the mpirun command line.")
    out.program = args[i]
    out.args = args[i + 1 :]
    return out


def _load(sim_dir: Path, name: str) -> HostState:
    try:
        return HostState.load(sim_dir, name)
    except LabError as exc:
        raise SimExit(
            1,
            f"ssh: Could not resolve hostname {name}: Name or service not "
            f"known\nORTE was unable to reliably start one or more daemons.\n"
            f"({LABEL}: {exc})",
        ) from exc


def layout(launch: Launch, sim_dir: Path) -> list[tuple[HostState, int]]:
    """(host, processes) pairs: ranks fill each host in order up to its slots (``--npernode``
    if given, else ``host:N``/``slots=N``, else 1 for ``--host`` and the host's GPU count for a
    hostfile line without slots)."""
    if not launch.hosts:
        raise SimExit(1, "mpirun: this simulator needs --host or --hostfile naming lab hosts")
    states: dict[str, HostState] = {}
    slots: dict[str, int] = {}
    for name, count in launch.hosts:
        state = states.setdefault(name, _load(sim_dir, name))
        if count is None:
            count = len(state.gpus()) if launch.from_hostfile else 1
        slots[name] = slots.get(name, 0) + count
    if launch.npernode:
        slots = {name: launch.npernode for name in slots}
    total = launch.np if launch.np is not None else sum(slots.values())
    if total > sum(slots.values()) or total < 1:
        raise SimExit(
            1,
            f"There are not enough slots available in the system to satisfy the "
            f"{total} slots that were requested by the application:\n  "
            f"{launch.program}",
        )
    plan: list[tuple[HostState, int]] = []
    left = total
    for name, count in slots.items():
        if left > 0:
            take = min(count, left)
            plan.append((states[name], take))
            left -= take
    return plan


def main(argv: Sequence[str]) -> int:
    launch = parse_launch(argv)
    if launch.program == "--version":
        sys.stdout.write(f"mpirun (Open MPI) 4.1.5\n({LABEL})\n")
        return 0
    program = Path(launch.program).name
    coll = PROGRAMS.get(program)
    if coll is None:
        raise SimExit(
            1,
            f"mpirun was unable to launch the specified application as it could "
            f"not access or execute an executable:\n\nExecutable: "
            f"{launch.program}\n({LABEL}: only nccl-tests are simulated)",
        )
    opts = parse(launch.args)
    sys.stdout.write(render(coll, opts, layout(launch, sim_dir_from_env()), program))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
