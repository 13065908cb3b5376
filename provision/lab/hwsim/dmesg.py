"""Simulated ``dmesg`` for lab hosts only (gpuctl lab hardware simulator: not real hardware).

Prints a short simulated boot log of this host's GPUs and HCAs, then the host's simulated
kernel messages (the Xid lines that ``xid`` faults add), never the real kernel ring buffer;
see the package docstring for why. Time formats: raw ``[ seconds.micros]`` (default),
``-T/--ctime``, ``-t/--notime``, ``--time-format ctime|iso|notime|raw``; ``-x/--decode``
prefixes ``kern  :warn  : ``. ``-c/--read-clear`` and ``-C/--clear`` empty the simulated log.
Other util-linux options (-k, -H, -L, -P, --nopager, -l LEVELS, -f LIST) are accepted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from provision.lab.hwsim.faults import kmsg_path, read_kmsg
from provision.lab.hwsim.personality import LABEL, gpu_bus_id, personality_path
from provision.lab.hwsim.state import HostState, SimExit, load_current, run_tool

FLAGS = {
    "-k",
    "--kernel",
    "-H",
    "--human",
    "-L",
    "--color",
    "-P",
    "--nopager",
    "-r",
    "--raw",
    "-u",
    "--userspace",
    "-e",
    "--reltime",
}
VALUED = {"-l", "--level", "-f", "--facility", "-s", "--buffer-size"}


def boot_log(state: HostState) -> list[tuple[float, str]]:
    """Simulated boot messages as (seconds since boot, message)."""
    facts = state.facts
    lines = [
        (0.0, f"{LABEL} (simulated kernel log of {state.host})"),
        (0.0, "Linux version 6.8.0-gpuctl-lab (simulated)"),
        (4.812133, "nvidia: loading out-of-tree module taints kernel."),
        (
            4.903710,
            f"NVRM: loading NVIDIA UNIX x86_64 Kernel Module  {facts.driver_version}  (simulated)",
        ),
        (4.951288, "nvidia-nvlink: Nvlink Core is being initialized, major device number 234"),
    ]
    for n in range(facts.hca_count):
        lines.append(
            (
                3.2 + n * 0.0113,
                f"mlx5_core 0000:{0x0C + n * 0x10:02x}:00.0: firmware "
                f"version: {facts.hca_fw_version}",
            )
        )
    for slot in range(facts.gpu_count):
        bus = gpu_bus_id(slot)[4:].lower()
        lines.append((5.1 + slot * 0.0071, f"nvidia {bus}: enabling device (0000 -> 0002)"))
    return sorted(lines, key=lambda entry: entry[0])


def stamp(style: str, rel: float, boot: float) -> str:
    if style == "notime":
        return ""
    if style == "ctime":
        return "[" + time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(boot + rel)) + "] "
    if style == "iso":
        at = boot + rel
        micro = int(round((at % 1) * 1e6)) % 1000000
        zone = time.strftime("%z", time.localtime(at))
        return (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(at))
            + f",{micro:06d}"
            + f"{zone[:3]}:{zone[3:]} "
        )
    return f"[{rel:12.6f}] "


def main(argv: Sequence[str]) -> int:
    style, decode, clear, show = "raw", False, False, True
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-T", "--ctime"):
            style = "ctime"
        elif a in ("-t", "--notime"):
            style = "notime"
        elif a == "--time-format" or a.startswith("--time-format="):
            value = a.split("=", 1)[1] if "=" in a else (args[i + 1] if i + 1 < len(args) else "")
            i += 0 if "=" in a else 1
            if value not in ("ctime", "iso", "notime", "raw", "reltime", "delta"):
                raise SimExit(1, f"dmesg: unknown time format: {value}")
            style = value if value in ("ctime", "iso", "notime") else "raw"
        elif a in ("-x", "--decode"):
            decode = True
        elif a in ("-c", "--read-clear"):
            clear = True
        elif a in ("-C", "--clear"):
            clear, show = True, False
        elif a in ("-V", "--version"):
            sys.stdout.write(f"dmesg from util-linux 2.38.1\n({LABEL})\n")
            return 0
        elif a in VALUED and i + 1 < len(args):
            i += 1
        elif a not in FLAGS and not a.startswith(("--level=", "--facility=")):
            raise SimExit(
                1, f"dmesg: unrecognized option '{a}'\nTry 'dmesg --help' for more information."
            )
        i += 1
    state = load_current()
    try:
        boot = personality_path(state.sim_dir, state.host).stat().st_mtime
    except OSError:
        boot = time.time()
    entries = boot_log(state) + [
        (max(t - boot, 5.5), msg) for t, msg in read_kmsg(state.sim_dir, state.host)
    ]
    if show:
        prefix = "kern  :warn  : " if decode else ""
        sys.stdout.write(
            "".join(f"{prefix}{stamp(style, rel, boot)}{msg}\n" for rel, msg in entries)
        )
    if clear:
        kmsg_path(state.sim_dir, state.host).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
