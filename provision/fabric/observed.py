"""The observed InfiniBand fabric, as the parsers of ``ibnetdiscover``
(:mod:`provision.fabric.topology`) and ``iblinkinfo`` (:mod:`provision.fabric.linkinfo`) both
return it: devices keyed by node GUID (or node id) and the cables between them.

Pure data: ``gpuctl fabric verify`` compares a :class:`Topology` with the planned fabric
(:mod:`provision.fabric.expected`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def norm_guid(text: str) -> str:
    """``"b8599f0300c2f06a"`` / ``"0xB859..."`` -> ``"0xb8599f0300c2f06a"`` (16 hex digits)."""
    return f"0x{int(text, 16):016x}"


@dataclass(frozen=True, slots=True)
class PortLink:
    """One connected port of a device, as its own record (or its peer's) tells it."""

    port: int
    peer: str
    peer_port: int
    width: str | None = None
    speed: str | None = None
    line: int = 0


@dataclass(slots=True)
class Device:
    """A node of the fabric. ``key`` is ``0x<node guid>`` when known, else its node id."""

    key: str
    kind: str
    desc: str
    guid: str | None = None
    nports: int = 0
    line: int = 0
    lid: int | None = None
    ports: dict[int, PortLink] = field(default_factory=dict)
    port_guids: dict[int, str] = field(default_factory=dict)

    @property
    def seen(self) -> bool:
        """False for a device known only from its peers' port lines (a partial capture)."""
        return self.line > 0


@dataclass(frozen=True, slots=True)
class ObservedLink:
    """One cable: ends ``(a, a_port)`` < ``(b, b_port)`` by device key, width and speed."""

    a: str
    a_port: int
    b: str
    b_port: int
    width: str | None = None
    speed: str | None = None

    @property
    def rate(self) -> str:
        return f"{self.width or '?'}{self.speed or '?'}"


@dataclass
class Topology:
    """Devices by key and the cables between them, in input order."""

    devices: dict[str, Device]
    links: list[ObservedLink]
    source: str = "ibnetdiscover"

    def merge(self, other: Topology) -> Topology:
        """Union of two captures (e.g. one per plane); a device in both keeps its ports."""
        devices = dict(self.devices)
        for key, dev in other.devices.items():
            mine = devices.get(key)
            if mine is None or (not mine.seen and dev.seen):
                devices[key] = dev
        seen = {(lk.a, lk.a_port, lk.b, lk.b_port) for lk in self.links}
        links = self.links + [lk for lk in other.links
                              if (lk.a, lk.a_port, lk.b, lk.b_port) not in seen]
        return Topology(devices, links, self.source)
