"""Split a multi-command capture into its sections and tell which probe parses each.

Captures that concatenate several commands (``nvidia_gpu_exporter``'s capture files, or a
burn-in run's own transcript) frame each command like this::

    ################################################################################
    # idle :: query (-q)
    # $ nvidia-smi -q
    ################################################################################
    <the command's output>

:func:`split_capture` returns the sections in order; :func:`kind_for_command` maps a
command line to the probe kind that parses its output, or None when no probe does.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from provision.errors import ParseError

_RULE = re.compile(r"^#{20,}\s*$")
_TITLE = re.compile(r"^# (?P<title>.+?)\s*$")
_COMMAND = re.compile(r"^# \$ (?P<command>.*?)\s*$")


@dataclass(frozen=True)
class CaptureSection:
    """One framed section: its title, the command (None if not shown) and its output."""

    title: str
    command: str | None
    body: str
    line: int


def split_capture(text: str) -> tuple[CaptureSection, ...]:
    """The framed sections of ``text``, in order; ParseError when there are none."""
    lines = text.splitlines()
    starts: list[tuple[int, str, str | None, int]] = []
    i = 0
    while i < len(lines):
        if _RULE.match(lines[i]):
            j = i + 1
            title: str | None = None
            command: str | None = None
            while j < len(lines) and not _RULE.match(lines[j]) and lines[j].startswith("#"):
                if (match := _COMMAND.match(lines[j])) is not None:
                    command = match.group("command")
                elif title is None and (match := _TITLE.match(lines[j])) is not None:
                    title = match.group("title")
                j += 1
            if j < len(lines) and _RULE.match(lines[j]) and title is not None:
                starts.append((i, title, command, j + 1))
                i = j + 1
                continue
        i += 1
    if not starts:
        raise ParseError("capture: no '####' framed section")
    sections = []
    for n, (_, title, command, body_start) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        body = "\n".join(lines[body_start:end]).strip("\n") + "\n"
        sections.append(CaptureSection(title, command, body, body_start + 1))
    return tuple(sections)


def kind_for_command(command: str) -> str | None:
    """The probe kind whose parser reads this command's output, or None."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv:
        return None
    tool, args = argv[0].rsplit("/", 1)[-1], argv[1:]
    if tool == "nvidia-smi":
        if args[:1] == ["nvlink"] and ({"-s", "--status"} & set(args)):
            return "nvlink"
        if any(a.startswith("--query-gpu=") for a in args) and any(
            a.startswith("--format=csv") for a in args
        ):
            return "nvidia-smi-csv"
        if "-q" in args or "--query" in args:
            return "nvidia-smi-xml" if ("-x" in args or "--xml-format" in args) else "nvidia-smi-q"
        return None
    simple = {
        "ibstat": "ibstat",
        "ibstatus": "ibstatus",
        "ib_write_bw": "ib-write-bw",
        "ib_write_lat": "ib-write-lat",
        "dmesg": "xid",
    }
    if tool in simple:
        return simple[tool]
    if tool == "lspci" and any(a in {"-vvv", "-vv"} for a in args):
        return "lspci"
    if tool == "dcgmi" and args[:1] == ["diag"] and ("-j" in args or "--json" in args):
        return "dcgmi-diag"
    if re.fullmatch(r"[a-z_]+_perf", tool):
        return "nccl"
    return None
