"""A pure parser of ``ibnetdiscover`` topology output into the observed fabric.

What ``ibnetdiscover`` prints (infiniband-diags; ibsim net files use the same grammar)::

    vendid=0x2c9
    switchguid=0x98039b0300a1b2c0(98039b0300a1b2c0)
    Switch  40 "S-98039b0300a1b2c0"  # "ib-leaf001" enhanced port 0 lid 3 lmc 0
    [1]  "H-b8599f0300c2f06a"[1](b8599f0300c2f06b)  # "dgx-001 mlx5_0" lid 7 4xHDR
    [21] "S-98039b0300a1b2d0"[1]  # "ib-spine01" lid 5 4xHDR s=4 w=2 v=4 e=4

    caguid=0xb8599f0300c2f06a
    Ca  1 "H-b8599f0300c2f06a"  # "dgx-001 mlx5_0"
    [1](b8599f0300c2f06b)  "S-98039b0300a1b2c0"[1]  # lid 7 lmc 0 "ib-leaf001" lid 3 4xHDR

A record is a header (``Switch``/``Ca``/``Hca``/``Rt``, port count, quoted node id, comment
with the node description) and one line per connected port. Node ids ``S-``/``H-``/``R-``
followed by hex are node GUIDs; any other id (an ibsim net file) is a name, its GUID then
comes from the ``switchguid=``/``caguid=`` line before the header. Every cable shows up on
both of its ends' records; a cable seen on one end only (a partial capture) is kept.

Pure: text in, :class:`~provision.fabric.observed.Topology` out;
:class:`~provision.errors.ParseError` with the line number and reason on anything that is not
this format. :func:`parse_topology` takes either this or ``iblinkinfo`` output.
"""

from __future__ import annotations

import re

from provision.errors import ParseError
from provision.fabric.linkinfo import looks_like_iblinkinfo, parse_iblinkinfo
from provision.fabric.observed import Device, ObservedLink, PortLink, Topology, norm_guid

KIND_OF_HEADER = {"Switch": "switch", "Ca": "ca", "Hca": "ca", "Rt": "router"}
KIND_OF_PREFIX = {"S": "switch", "H": "ca", "R": "router"}

_ID_GUID = re.compile(r"^([SHR])-([0-9a-fA-F]{1,16})$")
_HEADER = re.compile(r'^(Switch|Ca|Hca|Rt)\s+(\d+)\s+"([^"]+)"\s*(?:#\s*(.*))?$')
_PORT = re.compile(
    r'^\[(\d+)\](?:\[(?:ext )?\d+\])?(?:\(([0-9a-fA-Fx]+)\))?\s*'
    r'"([^"]+)"(?:\[(\d+)\])?(?:\[(?:ext )?\d+\])?(?:\(([0-9a-fA-Fx]+)\))?'
    r'(?:\s+[a-z]=\S+)*\s*(?:#\s*(.*))?$')
_ASSIGN = re.compile(r"^([A-Za-z_][\w]*)\s*=\s*(\S*)")
_GUID_VALUE = re.compile(r"^(0x[0-9a-fA-F]{1,16})")
_QUOTED = re.compile(r'"([^"]*)"')
_LID = re.compile(r"\blid (\d+)")
_RATE = re.compile(r"\b(\d+)x([A-Za-z][A-Za-z0-9]*)\b")

GUID_KEYS = {"switchguid": "switch", "caguid": "ca", "hcaguids": "ca", "rtguid": "router"}


def _node_key(node_id: str) -> tuple[str, str | None, str | None]:
    """(key, kind from the id prefix, GUID) of a quoted node id."""
    m = _ID_GUID.match(node_id)
    if m:
        guid = norm_guid(m.group(2))
        return guid, KIND_OF_PREFIX[m.group(1)], guid
    return node_id, None, None


def _rate(comment: str) -> tuple[str | None, str | None]:
    found = _RATE.findall(comment)
    if not found:
        return None, None
    width, speed = found[-1]
    return f"{width}x", speed


def _peer_desc(comment: str) -> str | None:
    m = _QUOTED.search(comment)
    return m.group(1) if m else None


class _Parser:
    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.current: Device | None = None
        self.pending_guid: str | None = None
        self.peer_info: dict[str, tuple[str | None, str | None]] = {}
        self.peer_port_guids: dict[tuple[str, int], str] = {}

    def fail(self, lineno: int, reason: str) -> ParseError:
        return ParseError(f"ibnetdiscover topology, line {lineno}: {reason}")

    def header(self, lineno: int, m: re.Match[str]) -> None:
        kind = KIND_OF_HEADER[m.group(1)]
        key, id_kind, guid = _node_key(m.group(3))
        if id_kind is not None and id_kind != kind:
            raise self.fail(lineno, f"{m.group(1)} record has a {id_kind} id {m.group(3)!r}")
        if key in self.devices:
            raise self.fail(lineno, f"node {m.group(3)!r} is listed twice")
        comment = m.group(4) or ""
        desc = _peer_desc(comment) if comment.startswith('"') else None
        if guid is None:
            guid = self.pending_guid
        self.pending_guid = None
        lid = _LID.search(comment)
        dev = Device(key, kind, desc if desc is not None else m.group(3), guid,
                     int(m.group(2)), lineno, int(lid.group(1)) if lid else None)
        self.devices[key] = dev
        self.current = dev

    def port(self, lineno: int, m: re.Match[str], raw: str) -> None:
        dev = self.current
        if dev is None:
            raise self.fail(lineno, f"port line before any Switch/Ca record: {raw[:60]!r}")
        num = int(m.group(1))
        if num == 0 and dev.kind != "switch" or dev.nports and num > dev.nports:
            raise self.fail(lineno, f"port {num} out of range for {dev.desc!r} "
                                    f"({dev.nports} ports)")
        if num in dev.ports:
            raise self.fail(lineno, f"port {num} of {dev.desc!r} is listed twice")
        peer, peer_kind, _ = _node_key(m.group(3))
        peer_port = int(m.group(4)) if m.group(4) else 1
        comment = m.group(6) or ""
        width, speed = _rate(comment)
        dev.ports[num] = PortLink(num, peer, peer_port, width, speed, lineno)
        if m.group(2):
            dev.port_guids[num] = norm_guid(m.group(2))
        if m.group(5):
            self.peer_port_guids.setdefault((peer, peer_port), norm_guid(m.group(5)))
        if peer not in self.peer_info:
            self.peer_info[peer] = (peer_kind, _peer_desc(comment))

    def assign(self, lineno: int, name: str, value: str) -> None:
        self.current = None
        if name in GUID_KEYS:
            m = _GUID_VALUE.match(value)
            if m is None:
                raise self.fail(lineno, f"{name}={value!r} is not a GUID")
            self.pending_guid = norm_guid(m.group(1))

    def feed(self, text: str) -> None:
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                m = _PORT.match(line)
                if m is None:
                    raise self.fail(lineno, f"malformed port line {line[:60]!r}")
                self.port(lineno, m, line)
                continue
            m = _HEADER.match(line)
            if m is not None:
                self.header(lineno, m)
                continue
            a = _ASSIGN.match(line)
            if a is not None:
                self.assign(lineno, a.group(1), a.group(2))
                continue
            raise self.fail(lineno, f"unexpected text {line[:60]!r} (not a record, port or "
                                    "key=value line)")

    def stubs(self) -> None:
        """Peers named only in port lines become devices without a record."""
        for dev in list(self.devices.values()):
            for pl in dev.ports.values():
                if pl.peer in self.devices:
                    continue
                kind, desc = self.peer_info.get(pl.peer, (None, None))
                guid = pl.peer if pl.peer.startswith("0x") else None
                self.devices[pl.peer] = Device(pl.peer, kind or "unknown",
                                               desc if desc is not None else pl.peer, guid)
        for (key, port), guid in self.peer_port_guids.items():
            self.devices[key].port_guids.setdefault(port, guid)

    def links(self) -> list[ObservedLink]:
        out: list[ObservedLink] = []
        done: set[tuple[str, int]] = set()
        for dev in self.devices.values():
            for num, pl in dev.ports.items():
                if (dev.key, num) in done:
                    continue
                peer = self.devices[pl.peer]
                back = peer.ports.get(pl.peer_port)
                if back is not None and (back.peer, back.peer_port) != (dev.key, num):
                    other = self.devices[back.peer].desc
                    raise self.fail(pl.line, f"{dev.desc!r} port {num} goes to {peer.desc!r} "
                                             f"port {pl.peer_port}, but line {back.line} says "
                                             f"that port goes to {other!r} port {back.peer_port}")
                if pl.peer == dev.key and pl.peer_port == num:
                    raise self.fail(pl.line, f"{dev.desc!r} port {num} is cabled to itself")
                done.add((dev.key, num))
                done.add((pl.peer, pl.peer_port))
                width = pl.width or (back.width if back else None)
                speed = pl.speed or (back.speed if back else None)
                a, b = sorted([(dev.key, num), (pl.peer, pl.peer_port)])
                out.append(ObservedLink(a[0], a[1], b[0], b[1], width, speed))
        return out


def parse_ibnetdiscover(text: str) -> Topology:
    """Parse ``ibnetdiscover`` output (or an ibsim net file) into a :class:`Topology`."""
    p = _Parser()
    p.feed(text)
    if not p.devices:
        raise ParseError("ibnetdiscover topology: no Switch or Ca records found "
                         "(is this ibnetdiscover output?)")
    p.stubs()
    return Topology(p.devices, p.links())


def parse_topology(text: str) -> Topology:
    """Parse ``ibnetdiscover`` or ``iblinkinfo`` output, whichever ``text`` is."""
    if looks_like_iblinkinfo(text):
        return parse_iblinkinfo(text)
    return parse_ibnetdiscover(text)
