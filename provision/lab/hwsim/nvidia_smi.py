"""Simulated ``nvidia-smi`` (gpuctl lab hardware simulator: not real hardware).

Supported: ``-q [-x]`` (``-x``/``--xml-format``, ``-d`` accepted and ignored), ``-L``,
``--query-gpu=F1,F2 --format=csv[,noheader][,nounits]``, ``nvlink -s|--status``, ``-i/--id``
(index, UUID or bus id, comma-separated), ``--version``, ``-h``, and no arguments (the table).
Anything else is an error with exit code 2, as with the real tool. The label is in
``--version``, in ``-q -x`` as an XML comment and in the wrapper script; text and CSV output
are exactly the real format, and stderr carries only errors (a judge quotes its last line).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from provision.errors import LabError
from provision.lab.hwsim.nvsmi_csv import render_csv
from provision.lab.hwsim.nvsmi_data import GpuView, gpu_views
from provision.lab.hwsim.nvsmi_text import (
    render_list,
    render_nvlink_status,
    render_query_text,
    render_table,
    render_version,
)
from provision.lab.hwsim.nvsmi_xml import render_xml
from provision.lab.hwsim.personality import LABEL
from provision.lab.hwsim.state import SimExit, load_current, now, run_tool

BAD_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help."
NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
USAGE = f"""NVIDIA System Management Interface -- {LABEL}

nvidia-smi [OPTION1 [ARG1]] [OPTION2 [ARG2]] ...

    -h,   --help                Print usage information and exit.
    -L,   --list-gpus           Display a list of GPUs connected to the system.
    -q,   --query               Display GPU or Unit info.
    -x,   --xml-format          Produce XML output.
    -i,   --id=                 Target a specific GPU.
    --query-gpu=                Information about GPU.
    --format=                   csv[,noheader][,nounits]
    --version                   Print version information.
    nvlink -s                   Display NVLink status.
"""


@dataclass
class Args:
    mode: str = "table"
    xml: bool = False
    ids: list[str] = field(default_factory=list)
    query: str = ""
    fmt: str = ""


def _value(args: list[str], i: int, opt: str) -> tuple[str, int]:
    if "=" in args[i] and args[i].startswith("--"):
        return args[i].split("=", 1)[1], i + 1
    if i + 1 >= len(args):
        raise SimExit(2, BAD_ARGS)
    return args[i + 1], i + 2


def parse(argv: Sequence[str]) -> Args:
    args = list(argv)
    out = Args()
    if args and args[0] == "nvlink":
        out.mode = "nvlink"
        args = args[1:]
        if not any(a in ("-s", "--status") for a in args):
            raise SimExit(2, BAD_ARGS)
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-h", "--help"):
            out.mode = "help"
            i += 1
        elif a == "--version":
            out.mode = "version"
            i += 1
        elif a in ("-L", "--list-gpus") and out.mode == "table":
            out.mode = "list"
            i += 1
        elif a in ("-q", "--query", "-qx", "-xq") and out.mode == "table":
            out.mode = "query"
            out.xml = out.xml or "x" in a[1:] and a != "--query"
            i += 1
        elif a in ("-x", "--xml-format"):
            out.xml = True
            i += 1
        elif a in ("-s", "--status") and out.mode == "nvlink":
            i += 1
        elif a in ("-d", "--display") or a.startswith("--display="):
            _, i = _value(args, i, a)
        elif a in ("-i", "--id") or a.startswith("--id="):
            value, i = _value(args, i, a)
            out.ids.extend(v.strip() for v in value.split(",") if v.strip())
        elif a.startswith("--query-gpu") and out.mode == "table":
            out.query, i = _value(args, i, a)
            out.mode = "csv"
        elif a.startswith("--format"):
            out.fmt, i = _value(args, i, a)
        else:
            raise SimExit(2, BAD_ARGS)
    if out.xml and out.mode != "query":
        raise SimExit(2, BAD_ARGS)
    if out.mode == "csv" and not out.fmt:
        raise SimExit(2, "Please specify the format with --format=csv.")
    return out


def _select(gpus: list[GpuView], ids: list[str]) -> list[GpuView]:
    if not ids:
        return gpus
    chosen: list[GpuView] = []
    for ident in ids:
        match = [
            g
            for g in gpus
            if ident in (str(g.index), g.uuid)
            or ident.lower() in (g.bus_id.lower(), g.bus_id[4:].lower())
        ]
        if not match:
            raise SimExit(6, "No devices were found")
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    if args.mode == "help":
        sys.stdout.write(USAGE)
        return 0
    try:
        state = load_current()
    except LabError as exc:
        raise SimExit(9, f"{NO_DRIVER}\n({LABEL}: {exc})") from exc
    if args.mode == "version":
        sys.stdout.write(render_version(state.facts))
        return 0
    gpus = gpu_views(state)
    if not gpus:
        raise SimExit(6, "No devices were found")
    gpus = _select(gpus, args.ids)
    at = now()
    if args.mode == "query" and args.xml:
        sys.stdout.write(render_xml(state.facts, gpus, at))
        return 0
    if args.mode == "query":
        text = render_query_text(render_xml(state.facts, gpus, at))
    elif args.mode == "csv":
        text = render_csv(state.facts, gpus, args.query, args.fmt, at)
    elif args.mode == "list":
        text = render_list(gpus)
    elif args.mode == "nvlink":
        text = render_nvlink_status(gpus)
    else:
        text = render_table(state.facts, gpus, at)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
