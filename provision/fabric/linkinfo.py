"""A pure parser of ``iblinkinfo`` output into the same
:class:`~provision.fabric.observed.Topology` as ibnetdiscover's.

``iblinkinfo`` prints one section per switch (``Switch: <guid> <desc>:``) and per CA
(``CA: <desc>:``), one line per port::

    0    5[  ] ==( 4X    53.125 Gbps Active/  LinkUp)==>   7    1[  ] "dgx-001 mlx5_0" ( )
    0x0000000000100005  9  1[  ] ==( 4X 25.78125 Gbps Active/  LinkUp)==>  3  3[  ] "ib-leaf001" ( )

A peer is named by LID and description only: it is resolved by a known non-zero LID, else
by its description, else by the peer line that points back. CAs' node GUIDs are not in the
output, so a CA is keyed by its port GUID and carries no node GUID (``--write-guids`` then
records switches only). Speeds are per-lane rates: 53.125 Gbps is HDR, 106.25 NDR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.errors import ParseError
from provision.fabric.observed import Device, ObservedLink, PortLink, Topology, norm_guid

LANE_GBPS = {"2.5": "SDR", "5.0": "DDR", "10.0": "QDR", "14.0625": "FDR", "10.3125": "FDR10",
             "25.78125": "EDR", "53.125": "HDR", "106.25": "NDR", "212.5": "XDR"}

_SWITCH = re.compile(r"^Switch:?\s+(0x[0-9a-fA-F]+)\s+(.*):\s*$")
_CA = re.compile(r"^CA:\s+(.*):\s*$")
_LINE = re.compile(
    r"^(?:(0x[0-9a-fA-F]+)\s+)?(\d+)\s+(\d+)\[[^\]]*\]\s+==\(\s*(.*?)\s*\)==>\s*"
    r"(?:(\d+)\s+(\d+))?\s*\[[^\]]*\]\s+\"([^\"]*)\"\s*(?:\(.*\))?\s*$")
_UP = re.compile(r"^(\d+)X\s+([\d.]+)\s+Gbps\s+(\w+)/\s*(\w+)")


def looks_like_iblinkinfo(text: str) -> bool:
    return "==(" in text and any(_SWITCH.match(ln) or _CA.match(ln)
                                 for ln in text.splitlines()[:50])


@dataclass(frozen=True, slots=True)
class _Line:
    dev: str
    port: int
    peer_lid: int
    peer_port: int
    peer_desc: str
    width: str
    speed: str
    lineno: int


def _fail(lineno: int, reason: str) -> ParseError:
    return ParseError(f"iblinkinfo, line {lineno}: {reason}")


def _scan(text: str) -> tuple[dict[str, Device], list[_Line]]:
    devices: dict[str, Device] = {}
    lines: list[_Line] = []
    current: Device | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if m := _SWITCH.match(line):
            key = norm_guid(m.group(1))
            current = devices.setdefault(key, Device(key, "switch", m.group(2), key, 0, lineno))
            continue
        if m := _CA.match(line):
            current = Device("", "ca", m.group(1), None, 0, lineno)
            continue
        m = _LINE.match(line)
        if m is None:
            raise _fail(lineno, f"unexpected text {line[:60]!r}")
        if current is None:
            raise _fail(lineno, "port line before any Switch:/CA: header")
        port, lid = int(m.group(3)), int(m.group(2))
        if current.kind == "ca":
            if m.group(1) is None:
                raise _fail(lineno, "CA port line without a port GUID")
            pg = norm_guid(m.group(1))
            if not current.key:
                current.key = f"port:{pg}"
                devices[current.key] = current
            current.port_guids[port] = pg
        current.lid = current.lid or lid or None
        up = _UP.match(m.group(4))
        if up is None or m.group(6) is None:
            continue  # Down / Polling / Disabled: nothing cabled or no link
        speed = LANE_GBPS.get(up.group(2), f"{up.group(2)}G")
        lines.append(_Line(current.key, port, int(m.group(5)), int(m.group(6)), m.group(7),
                           f"{up.group(1)}x", speed, lineno))
    return devices, lines


def parse_iblinkinfo(text: str) -> Topology:
    """Parse ``iblinkinfo`` output; ParseError when it is not that or peers are ambiguous."""
    devices, lines = _scan(text)
    if not devices:
        raise ParseError("iblinkinfo: no Switch:/CA: sections found")
    by_lid: dict[int, list[str]] = {}
    by_desc: dict[str, list[str]] = {}
    for d in devices.values():
        if d.lid:
            by_lid.setdefault(d.lid, []).append(d.key)
        by_desc.setdefault(d.desc, []).append(d.key)
    said = {(ln.dev, ln.port): ln for ln in lines}
    links: dict[tuple[tuple[str, int], tuple[str, int]], ObservedLink] = {}
    for ln in lines:
        cands = by_lid.get(ln.peer_lid, []) if ln.peer_lid else []
        if len(cands) != 1:
            cands = by_desc.get(ln.peer_desc, [])
        if len(cands) > 1:
            me = devices[ln.dev].desc
            cands = [c for c in cands if (back := said.get((c, ln.peer_port))) is not None
                     and back.peer_desc == me and back.peer_port == ln.port
                     and (c, ln.peer_port) != (ln.dev, ln.port)]
        if len(cands) > 1:
            raise _fail(ln.lineno, f"peer {ln.peer_desc!r} is ambiguous ({len(cands)} devices "
                                   "share that description); capture with ibnetdiscover")
        if not cands:
            key = f"desc:{ln.peer_desc}"
            devices.setdefault(key, Device(key, "unknown", ln.peer_desc))
            cands = [key]
        peer = cands[0]
        devices[ln.dev].ports[ln.port] = PortLink(ln.port, peer, ln.peer_port, ln.width,
                                                  ln.speed, ln.lineno)
        a, b = sorted([(ln.dev, ln.port), (peer, ln.peer_port)])
        links.setdefault((a, b), ObservedLink(a[0], a[1], b[0], b[1], ln.width, ln.speed))
    _check_ports(links, lines)
    return Topology(devices, list(links.values()), source="iblinkinfo")


def _check_ports(links: dict[tuple[tuple[str, int], tuple[str, int]], ObservedLink],
                 lines: list[_Line]) -> None:
    used: dict[tuple[str, int], tuple[str, int]] = {}
    for a, b in links:
        for x, y in ((a, b), (b, a)):
            if x in used and used[x] != y:
                ln = next((ln for ln in lines if (ln.dev, ln.port) == x), lines[0])
                raise _fail(ln.lineno, f"port {x[1]} of {x[0]!r} is reported cabled to two "
                                       "different peers")
            used[x] = y
