"""Cabling faults for simulated fabrics: edits of an ibsim net file (text in, text out).

The lab and the tests inject the faults ``gpuctl fabric verify`` must find by editing the net
file :func:`provision.render.ibsim.ibsim_net` renders, before ibsim loads it: swap two
cables, pull one, move one to another port, bring a link up at another width or speed,
rename a device, plug in a device the plan does not know. Every edit keeps both ends of a
cable consistent, as ibsim requires. Ends are ``(node id, port)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from provision.errors import UsageError

End = tuple[str, int]

_HEADER = re.compile(r'^(Switch|Hca|Ca|Rt)\s+(\d+)\s+"([^"]+)"')
_PORT = re.compile(r'^\[(\d+)\]\s*"([^"]+)"\[(\d+)\]\s*(?:#\s*(.*))?$')
_RATE = re.compile(r"\b\d+x[A-Za-z][A-Za-z0-9]*\b")


@dataclass
class NetRecord:
    """One node: the lines before its header (GUID lines, comments), header, cabled ports."""

    pre: list[str]
    header: str
    name: str
    nports: int
    ports: dict[int, tuple[str, int, str]] = field(default_factory=dict)
    """port -> (peer node id, peer port, comment after ``#``)."""


class NetFile:
    """An editable ibsim net file; :meth:`text` writes it back."""

    def __init__(self, text: str) -> None:
        self.records: dict[str, NetRecord] = {}
        self.tail: list[str] = []
        pending: list[str] = []
        current: NetRecord | None = None
        for line in text.splitlines():
            m = _HEADER.match(line)
            if m is not None:
                current = NetRecord(pending, line, m.group(3), int(m.group(2)))
                self.records[current.name] = current
                pending = []
                continue
            p = _PORT.match(line.strip())
            if p is not None and current is not None:
                current.ports[int(p.group(1))] = (p.group(2), int(p.group(3)), p.group(4) or "")
                continue
            current = None
            pending.append(line)
        self.tail = pending

    def text(self) -> str:
        out: list[str] = []
        for rec in self.records.values():
            out += rec.pre
            out.append(rec.header)
            for port in sorted(rec.ports):
                peer, pport, comment = rec.ports[port]
                out.append(f'[{port}] "{peer}"[{pport}]' + (f" # {comment}" if comment else ""))
        out += self.tail
        return "\n".join(out).rstrip("\n") + "\n"

    def _rec(self, node: str) -> NetRecord:
        rec = self.records.get(node)
        if rec is None:
            raise UsageError(f"net file has no node {node!r}")
        return rec

    def peer(self, end: End) -> End:
        entry = self._rec(end[0]).ports.get(end[1])
        if entry is None:
            raise UsageError(f"net file: {end[0]!r} port {end[1]} is not cabled")
        return entry[0], entry[1]

    def comment(self, end: End) -> str:
        return self._rec(end[0]).ports[end[1]][2]

    def _set(self, end: End, to: End, comment: str) -> None:
        rec = self._rec(end[0])
        if not 1 <= end[1] <= rec.nports:
            raise UsageError(f"net file: {end[0]!r} has no port {end[1]} ({rec.nports} ports)")
        rec.ports[end[1]] = (to[0], to[1], comment)

    def connect(self, x: End, y: End, comment: str) -> None:
        for end in (x, y):
            if end[1] in self._rec(end[0]).ports:
                raise UsageError(f"net file: {end[0]!r} port {end[1]} is already cabled")
        self._set(x, y, comment)
        self._set(y, x, comment)

    def drop(self, end: End) -> None:
        """Pull the cable at ``end``."""
        other = self.peer(end)
        del self._rec(end[0]).ports[end[1]]
        del self._rec(other[0]).ports[other[1]]

    def swap(self, x: End, y: End) -> None:
        """Cables ``x - x'`` and ``y - y'`` become ``x - y'`` and ``y - x'``."""
        xp, yp = self.peer(x), self.peer(y)
        cx, cy = self.comment(x), self.comment(y)
        self.drop(x)
        self.drop(y)
        self.connect(x, yp, cy)
        self.connect(y, xp, cx)

    def move(self, end: End, to: End) -> None:
        """The cable at ``end`` leaves its far port for ``to`` (a free port)."""
        comment = self.comment(end)
        self.drop(end)
        self.connect(end, to, comment)

    def set_rate(self, end: End, rate: str) -> None:
        """Bring the link at ``end`` up at ``rate`` (``"1xHDR"``, ``"4xEDR"``), both sides."""
        other = self.peer(end)
        for e, to in ((end, other), (other, end)):
            comment = self.comment(e)
            new = _RATE.sub(rate, comment) if _RATE.search(comment) else f"{comment} {rate}"
            self._set(e, to, new.strip())

    def describe(self, node: str, desc: str) -> None:
        """Give ``node`` the node description ``desc`` (its node id stays)."""
        rec = self._rec(node)
        head = rec.header.split("#", 1)[0].rstrip()
        rec.header = f'{head} # "{desc}"'

    def add_ca(self, name: str, to: End, comment: str = "lid 0 4xHDR", guid: str = "") -> None:
        """Plug a new single-port CA ``name`` into the free port ``to``."""
        if name in self.records:
            raise UsageError(f"net file already has a node {name!r}")
        pre = ["", f"caguid={guid}"] if guid else [""]
        self.records[name] = NetRecord(pre, f'Hca 1 "{name}"', name, 1)
        self.connect((name, 1), to, comment)
