"""Probe ``lspci -vvv``: every PCI device and its PCIe link, capability versus status.

A link is *downgraded* when it trained below its capability. lspci 3.x says so itself
(``LnkSta: Speed 16GT/s (downgraded), Width x16 (ok)``); for older lspci, which prints no
annotation, the parser compares LnkSta with LnkCap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.burnin.probes._common import check_text, snippet
from provision.errors import ParseError

KIND = "lspci"

_HEADER = re.compile(
    r"^(?P<addr>(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) "
    r"(?P<cls>[^:]+): (?P<desc>.*)$"
)
_SPEED = re.compile(r"Speed (?P<speed>\d+(?:\.\d+)?GT/s|unknown)(?: \((?P<note>[^)]*)\))?")
_WIDTH = re.compile(r"Width x(?P<width>\d+)(?: \((?P<note>[^)]*)\))?")


@dataclass(frozen=True)
class PciDevice:
    """One device; the link fields are None for devices without a PCIe capability.

    ``unreadable`` is True when lspci could not read the config space ("!!! Unknown header
    type 7f"): the device answers all-ones, typically a GPU that fell off the bus.
    """

    address: str
    device_class: str
    description: str
    driver: str | None
    unreadable: bool
    cap_speed_gts: float | None
    cap_width: int | None
    sta_speed_gts: float | None
    sta_width: int | None
    speed_downgraded: bool | None
    width_downgraded: bool | None

    @property
    def downgraded(self) -> bool:
        return bool(self.speed_downgraded or self.width_downgraded)


@dataclass(frozen=True)
class LspciReport:
    """All devices in the order printed."""

    devices: tuple[PciDevice, ...]


def command() -> list[str]:
    """argv of the probe (``-D`` prints the PCI domain, as nvidia-smi does)."""
    return ["lspci", "-D", "-vvv"]


def _speed(number: int, text: str) -> tuple[float | None, str | None]:
    match = _SPEED.search(text)
    if match is None:
        raise ParseError(f"{KIND}: line {number}: no 'Speed NGT/s' in {snippet(text)!r}")
    speed = match.group("speed")
    return (None if speed == "unknown" else float(speed[:-4])), match.group("note")


def _width(number: int, text: str) -> tuple[int, str | None]:
    match = _WIDTH.search(text)
    if match is None:
        raise ParseError(f"{KIND}: line {number}: no 'Width xN' in {snippet(text)!r}")
    return int(match.group("width")), match.group("note")


def _downgraded(note: str | None, current: float | None, cap: float | None) -> bool | None:
    if note is not None:
        return note.strip() == "downgraded"
    if current is None or cap is None:
        return None if cap is None else True
    return current < cap


def _device(header: re.Match[str], lines: list[tuple[int, str]]) -> PciDevice:
    cap: tuple[int, str] | None = None
    sta: tuple[int, str] | None = None
    driver: str | None = None
    unreadable = False
    for number, line in lines:
        stripped = line.strip()
        if stripped.startswith("LnkCap:") and cap is None:
            cap = (number, stripped)
        elif stripped.startswith("LnkSta:") and sta is None:
            sta = (number, stripped)
        elif stripped.startswith("!!! Unknown header type"):
            unreadable = True
        elif stripped.startswith("Kernel driver in use:"):
            driver = stripped.split(":", 1)[1].strip()
    cap_speed = cap_width = sta_speed = sta_width = None
    speed_down = width_down = None
    if cap is not None:
        cap_speed, _ = _speed(*cap)
        cap_width, _ = _width(*cap)
    if sta is not None:
        sta_speed, speed_note = _speed(*sta)
        sta_width, width_note = _width(*sta)
        speed_down = _downgraded(speed_note, sta_speed, cap_speed)
        width_down = _downgraded(width_note, sta_width, cap_width)
    return PciDevice(
        address=header.group("addr"),
        device_class=header.group("cls"),
        description=header.group("desc"),
        driver=driver,
        unreadable=unreadable,
        cap_speed_gts=cap_speed,
        cap_width=cap_width,
        sta_speed_gts=sta_speed,
        sta_width=sta_width,
        speed_downgraded=speed_down,
        width_downgraded=width_down,
    )


def parse(text: str) -> LspciReport:
    """Parse the verbose listing; ParseError on text that is not lspci's block layout."""
    check_text(KIND, text)
    blocks: list[tuple[re.Match[str], list[tuple[int, str]]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("pcilib:"):
            continue
        if line[0] in " \t":
            if not blocks:
                raise ParseError(
                    f"{KIND}: line {number} comes before any device line: {snippet(line)!r}"
                )
            blocks[-1][1].append((number, line))
            continue
        header = _HEADER.match(line)
        if header is None:
            raise ParseError(f"{KIND}: unexpected line {number}: {snippet(line)!r}")
        blocks.append((header, []))
    if not blocks:
        raise ParseError(f"{KIND}: no device line such as '0000:19:00.0 3D controller: ...'")
    return LspciReport(tuple(_device(header, lines) for header, lines in blocks))
