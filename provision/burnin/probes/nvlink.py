"""Probe ``nvidia-smi nvlink --status``: per GPU, each NVLink's speed or that it is inactive."""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.burnin.probes._common import check_text, snippet
from provision.errors import ParseError

KIND = "nvlink"

_GPU = re.compile(r"^GPU (?P<index>\d+): (?P<name>.+?) \(UUID: (?P<uuid>[^)]+)\)$")
_LINK = re.compile(r"^Link (?P<link>\d+): (?P<state>.+)$")
_SPEED = re.compile(r"^(?P<speed>\d+(?:\.\d+)?) GB/s$")
_INACTIVE = {"<inactive>", "inactive"}
_ALL_INACTIVE = "all links are inactive"


@dataclass(frozen=True)
class NvLink:
    """One link: its number and speed in GB/s, or ``active=False`` and no speed."""

    link: int
    active: bool
    speed_gbps: float | None


@dataclass(frozen=True)
class NvLinkGpu:
    """One GPU's links; ``all_inactive`` when NVML reported no active link at all."""

    index: int
    name: str
    uuid: str
    all_inactive: bool
    links: tuple[NvLink, ...]

    @property
    def active_links(self) -> int:
        return sum(1 for link in self.links if link.active)


@dataclass(frozen=True)
class NvLinkStatus:
    """The whole answer, GPUs in the order printed."""

    gpus: tuple[NvLinkGpu, ...]


def command() -> list[str]:
    """argv of the probe."""
    return ["nvidia-smi", "nvlink", "--status"]


def _link(number: int, match: re.Match[str]) -> NvLink:
    state = match.group("state").strip()
    if state.lower() in _INACTIVE:
        return NvLink(int(match.group("link")), False, None)
    speed = _SPEED.match(state)
    if speed is None:
        raise ParseError(
            f"{KIND}: line {number}: link state {state!r} is neither 'N GB/s' nor '<inactive>'"
        )
    return NvLink(int(match.group("link")), True, float(speed.group("speed")))


def parse(text: str) -> NvLinkStatus:
    """Parse the status listing; ParseError on a line that is not a GPU, link or NVML note."""
    check_text(KIND, text)
    gpus: list[NvLinkGpu] = []
    current: dict[str, str] | None = None
    links: list[NvLink] = []
    inactive = False

    def close() -> None:
        if current is not None:
            gpus.append(
                NvLinkGpu(
                    int(current["index"]), current["name"], current["uuid"], inactive, tuple(links)
                )
            )

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        gpu = _GPU.match(line)
        if gpu is not None:
            close()
            current, links, inactive = gpu.groupdict(), [], False
            continue
        if current is None:
            raise ParseError(
                f"{KIND}: line {number} comes before any 'GPU N:' line: {snippet(line)!r}"
            )
        link = _LINK.match(line)
        if link is not None:
            links.append(_link(number, link))
        elif line.startswith("NVML:") and _ALL_INACTIVE in line:
            inactive = True
        else:
            raise ParseError(f"{KIND}: unexpected line {number}: {snippet(line)!r}")
    close()
    if not gpus:
        raise ParseError(f"{KIND}: no 'GPU N: ...' line")
    return NvLinkStatus(tuple(gpus))
