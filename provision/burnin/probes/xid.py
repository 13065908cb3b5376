"""Probe the kernel log for NVIDIA Xid events (and, in the same pass, other GPU-host faults).

One scan of a log (``dmesg``, syslog, journal or the fabric manager log) yields:

- ``NVRM: Xid (PCI:0000:9b:00): 79, pid=..., name=..., <message>`` events, each with a
  severity from :data:`XID_CATALOG` (NVIDIA's Xid documentation) or ``unknown``; older
  drivers print ``pid=N,`` without ``name=`` (or neither);
- GPUs the driver lost without an Xid line: ``NVRM: GPU 0000:db:00.0: GPU has fallen off the
  bus.``, ``NVRM: The NVIDIA GPU 0000:db:00.0 (PCI ID: ...) ... has fallen off the bus``,
  ``NVRM: GPU 0000:db:00.0: RmInitAdapter failed!`` -- each a :class:`GpuLost`;
- fabric manager ``[ERROR]``/``[FATAL]``/``[WARNING]`` lines;
- network carrier changes (``ib0: lost carrier``), from which link flapping is counted.

Any line may be noise; the text must still look like a log (a timestamped or ``NVRM:`` line),
and an ``NVRM: Xid`` line that does not match the Xid layout is a ParseError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.burnin.probes._common import check_text, snippet
from provision.errors import ParseError

KIND = "xid"

#: Xid code -> (severity, meaning). critical: the GPU needs a reset or replacement;
#: warning: a hardware symptom worth tracking; info/app: usually the application's fault.
XID_CATALOG: dict[int, tuple[str, str]] = {
    13: ("app", "graphics engine exception"),
    31: ("app", "GPU memory page fault"),
    32: ("warning", "invalid or corrupted push buffer stream"),
    38: ("warning", "driver firmware error"),
    43: ("app", "GPU stopped processing"),
    45: ("info", "preemptive cleanup, due to previous errors"),
    48: ("critical", "double bit ECC error"),
    61: ("critical", "internal micro-controller breakpoint/warning"),
    62: ("critical", "internal micro-controller halt"),
    63: ("warning", "ECC page retirement or row remapping recording event"),
    64: ("critical", "ECC page retirement or row remapper recording failure"),
    68: ("warning", "video processor exception"),
    69: ("warning", "graphics engine class error"),
    74: ("critical", "NVLink error"),
    79: ("critical", "GPU has fallen off the bus"),
    92: ("warning", "high single-bit ECC error rate"),
    94: ("warning", "contained ECC error"),
    95: ("critical", "uncontained ECC error"),
    109: ("warning", "context switch timeout"),
    119: ("critical", "GSP RPC timeout"),
    120: ("critical", "GSP error"),
    121: ("critical", "C2C link error"),
    140: ("critical", "unrecovered ECC error"),
    143: ("critical", "GPU initialization failure"),
    154: ("critical", "GPU recovery action changed"),
}

_XID = re.compile(
    r"NVRM: Xid \((?:PCI:)?(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)\): "
    r"(?P<code>\d+)(?:, (?P<rest>.*))?$"
)
_PID = re.compile(
    r"^pid=(?P<pid>'?[^,]*'?),(?: name=(?P<name>[^,]*),)?(?: (?P<message>.*))?$"
)
_LOST_PCI = re.compile(
    r"NVRM: (?:GPU at PCI:|GPU |The NVIDIA GPU )(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:"
    r"[0-9A-Fa-f]{2}(?:\.[0-7])?)"
)
#: NVRM phrases that mean the driver lost a GPU (the Xid line may be missing).
_LOST = (
    ("fallen off the bus", "fallen-off-bus"),
    ("rminitadapter failed", "init-failed"),
    ("rm_init_adapter failed", "init-failed"),
    ("gpu is lost", "fallen-off-bus"),
)
_FM = re.compile(r"^\[(?P<ts>[^\]]+)\] \[(?P<level>ERROR|FATAL|WARNING|WARN)\] (?P<message>.*)$")
_CARRIER = re.compile(r"(?P<iface>[\w.-]+): (?P<event>lost carrier|gained carrier)", re.IGNORECASE)
_STAMPS = (
    re.compile(r"^\[\s*(?P<ts>\d+\.\d+)\]"),  # dmesg
    re.compile(r"^\[(?P<ts>[A-Z][a-z]{2} [^\]]+)\]"),  # dmesg -T, fabric manager
    re.compile(r"^(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d[^ ]*)"),  # dmesg --time-format=iso
    re.compile(r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)"),  # syslog / journal
)


@dataclass(frozen=True)
class XidEvent:
    """One Xid line."""

    line: int
    timestamp: str | None
    pci: str
    xid: int
    severity: str
    meaning: str | None
    pid: str | None
    process: str | None
    message: str


@dataclass(frozen=True)
class GpuLost:
    """An ``NVRM:`` line saying the driver lost a GPU (``fault`` ``fallen-off-bus`` or
    ``init-failed``); ``pci`` None when the line does not name the device."""

    line: int
    timestamp: str | None
    pci: str | None
    fault: str
    message: str


@dataclass(frozen=True)
class FabricManagerEvent:
    """One fabric manager line at WARNING level or above."""

    line: int
    timestamp: str
    level: str
    message: str


@dataclass(frozen=True)
class CarrierEvent:
    """A network interface losing (``up=False``) or regaining its carrier."""

    line: int
    timestamp: str | None
    interface: str
    up: bool


@dataclass(frozen=True)
class KernelLogReport:
    """Everything the scan found, in log order."""

    xids: tuple[XidEvent, ...]
    gpus_lost: tuple[GpuLost, ...]
    fabric_manager: tuple[FabricManagerEvent, ...]
    carrier: tuple[CarrierEvent, ...]

    def link_flaps(self) -> dict[str, int]:
        """Carrier losses per interface, sorted by interface name."""
        counts: dict[str, int] = {}
        for event in self.carrier:
            if not event.up:
                counts[event.interface] = counts.get(event.interface, 0) + 1
        return dict(sorted(counts.items()))


def command() -> list[str]:
    """argv of the probe: the kernel ring buffer with ISO timestamps."""
    return ["dmesg", "--time-format=iso"]


def fabric_manager_command(path: str = "/var/log/fabricmanager.log") -> list[str]:
    """argv that prints the fabric manager log (parse it with the same :func:`parse`)."""
    return ["cat", "--", path]


def _timestamp(line: str) -> str | None:
    for pattern in _STAMPS:
        match = pattern.match(line)
        if match is not None:
            return match.group("ts").strip()
    return None


def _xid(number: int, line: str) -> XidEvent:
    match = _XID.search(line)
    if match is None:
        raise ParseError(f"{KIND}: line {number}: garbled Xid line {snippet(line, 100)!r}")
    code = int(match.group("code"))
    rest = (match.group("rest") or "").strip()
    pid = process = None
    detail = _PID.match(rest)
    if detail is not None:
        pid, process = detail.group("pid").strip("'"), detail.group("name")
        rest = (detail.group("message") or "").strip()
    severity, meaning = XID_CATALOG.get(code, ("unknown", None))
    return XidEvent(
        number, _timestamp(line), match.group("pci"), code, severity, meaning, pid, process, rest
    )


def _lost(number: int, line: str, previous_pci: str | None) -> GpuLost | None:
    """A lost-GPU line; an untimestamped continuation line takes the PCI of the line before."""
    lowered = line.lower()
    fault = next((name for phrase, name in _LOST if phrase in lowered), None)
    if fault is None:
        return None
    match = _LOST_PCI.search(line)
    pci = match.group("pci") if match else None
    if pci is None and _timestamp(line) is None:
        pci = previous_pci
    message = line[line.index("NVRM:") + len("NVRM:") :].strip()
    return GpuLost(number, _timestamp(line), pci, fault, message)


def parse(text: str) -> KernelLogReport:
    """Scan a log; ParseError when the text is not a log or an Xid line is garbled."""
    check_text(KIND, text)
    xids: list[XidEvent] = []
    lost: list[GpuLost] = []
    fm: list[FabricManagerEvent] = []
    carrier: list[CarrierEvent] = []
    looks_like_log = False
    previous_pci: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        stamp = _timestamp(line)
        looks_like_log = looks_like_log or stamp is not None or "NVRM:" in line
        if "NVRM: Xid" in line:
            xids.append(_xid(number, line))
        elif "NVRM:" in line and (gone := _lost(number, line, previous_pci)) is not None:
            lost.append(gone)
        if "NVRM:" in line:
            pci_match = _LOST_PCI.search(line)
            previous_pci = pci_match.group("pci") if pci_match else previous_pci
        elif (match := _FM.match(line)) is not None:
            level = "WARNING" if match.group("level") == "WARN" else match.group("level")
            fm.append(
                FabricManagerEvent(number, match.group("ts"), level, match.group("message").strip())
            )
        elif (match := _CARRIER.search(line)) is not None:
            carrier.append(
                CarrierEvent(
                    number,
                    stamp,
                    match.group("iface"),
                    match.group("event").lower() == "gained carrier",
                )
            )
    if not looks_like_log:
        raise ParseError(
            f"{KIND}: not a kernel or fabric manager log (no timestamped line), "
            f"starts with {snippet(text)!r}"
        )
    return KernelLogReport(tuple(xids), tuple(lost), tuple(fm), tuple(carrier))
