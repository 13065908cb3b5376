"""Probes ``ibstat`` and ``ibstatus``: channel adapters (CAs), their ports and link state.

Both parse to :class:`IbReport`, with states in one vocabulary: port ``state`` is one of
Down/Init/Armed/Active and ``physical_state`` is ibstat's spelling (LinkUp, Polling,
Disabled, ...). ``ibstatus`` reports no CA type, firmware or GUIDs; for an InfiniBand port
its port GUID is the interface half of the link-local ``default gid``.

``ibstat`` that ended in ``ibpanic:`` (it exits 255, e.g. a device vanished while it was
listing) is a ParseError: the CA list before the panic is incomplete, and a judge must not
take it for the whole adapter set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.burnin.probes._common import check_text, float_or_none, int_or_none, snippet
from provision.errors import ParseError

_STATES = {
    "down": "Down",
    "initializing": "Init",
    "init": "Init",
    "armed": "Armed",
    "active": "Active",
    "active_defer": "ActiveDefer",
}
_PHYS = {
    "sleep": "Sleep",
    "polling": "Polling",
    "disabled": "Disabled",
    "portconfigurationtraining": "PortConfigurationTraining",
    "linkup": "LinkUp",
    "linkerrorrecovery": "LinkErrorRecovery",
    "phy test": "PhyTest",
    "no state change": "NoStateChange",
}


@dataclass(frozen=True)
class IbPort:
    """One port of a CA."""

    port: int
    state: str | None
    physical_state: str | None
    rate_gbps: float | None
    rate_detail: str | None
    link_layer: str | None
    base_lid: int | None
    sm_lid: int | None
    port_guid: str | None
    gid: str | None


@dataclass(frozen=True)
class IbCa:
    """One channel adapter (``mlx5_0``) and its ports."""

    name: str
    ca_type: str | None
    firmware: str | None
    hardware_version: str | None
    node_guid: str | None
    system_image_guid: str | None
    ports: tuple[IbPort, ...]


@dataclass(frozen=True)
class IbReport:
    """All CAs, in the order printed."""

    source: str
    cas: tuple[IbCa, ...]


def ibstat_command() -> list[str]:
    """argv of the ibstat probe."""
    return ["ibstat"]


def ibstatus_command() -> list[str]:
    """argv of the ibstatus probe."""
    return ["ibstatus"]


def _state(kind: str, value: str | None, table: dict[str, str], what: str) -> str | None:
    """Normalise ``"4: ACTIVE"`` / ``"Active"`` to the shared vocabulary."""
    if value is None:
        return None
    word = value.split(":", 1)[1] if re.match(r"^\d+:", value) else value
    key = word.strip().lower()
    if key not in table:
        raise ParseError(
            f"{kind}: unknown {what} {value.strip()!r}; expected one of "
            f"{', '.join(sorted(set(table.values())))}"
        )
    return table[key]


# ---------------------------------------------------------------- ibstat

_CA = re.compile(r"^CA '(?P<name>[^']+)'$")
_PORT = re.compile(r"^Port (?P<port>\d+):$")
_KV = re.compile(r"^(?P<key>[A-Za-z][A-Za-z_ ]*?):\s*(?P<value>.*)$")


def _port_ibstat(number: int, fields: dict[str, str]) -> IbPort:
    kind = "ibstat"
    return IbPort(
        port=number,
        state=_state(kind, fields.get("State"), _STATES, "port state"),
        physical_state=_state(kind, fields.get("Physical state"), _PHYS, "physical state"),
        rate_gbps=float_or_none(kind, "Rate", fields.get("Rate")),
        rate_detail=None,
        link_layer=fields.get("Link layer"),
        base_lid=int_or_none(kind, "Base lid", fields.get("Base lid")),
        sm_lid=int_or_none(kind, "SM lid", fields.get("SM lid")),
        port_guid=fields.get("Port GUID"),
        gid=None,
    )


def parse_ibstat(text: str) -> IbReport:
    """Parse ``ibstat`` (all CAs); ParseError on ``ibpanic`` or unknown lines."""
    kind = "ibstat"
    check_text(kind, text)
    cas: list[IbCa] = []
    ca: dict[str, str] | None = None
    ports: list[IbPort] = []
    port: tuple[int, dict[str, str]] | None = None

    def close_port() -> None:
        nonlocal port
        if port is not None:
            ports.append(_port_ibstat(*port))
            port = None

    def close_ca() -> None:
        nonlocal ca, ports
        close_port()
        if ca is not None:
            cas.append(
                IbCa(
                    ca["name"],
                    ca.get("CA type"),
                    ca.get("Firmware version"),
                    ca.get("Hardware version"),
                    ca.get("Node GUID"),
                    ca.get("System image GUID"),
                    tuple(ports),
                )
            )
        ca, ports = None, []

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("ibpanic:") or line.startswith("ibwarn:"):
            raise ParseError(
                f"{kind}: ibstat reported an error, CA list incomplete: {snippet(line, 120)!r}"
            )
        if (match := _CA.match(line)) is not None:
            close_ca()
            ca = {"name": match.group("name")}
        elif ca is None:
            raise ParseError(f"{kind}: line {number} comes before any CA line: {snippet(line)!r}")
        elif (match := _PORT.match(line)) is not None:
            close_port()
            port = (int(match.group("port")), {})
        elif (match := _KV.match(line)) is not None:
            (port[1] if port is not None else ca)[match.group("key")] = match.group("value").strip()
        else:
            raise ParseError(f"{kind}: unexpected line {number}: {snippet(line)!r}")
    close_ca()
    if not cas:
        raise ParseError(f"{kind}: no \"CA '<name>'\" line")
    return IbReport("ibstat", tuple(cas))


# ---------------------------------------------------------------- ibstatus

_DEVICE = re.compile(r"^Infiniband device '(?P<name>[^']+)' port (?P<port>\d+) status:$")
_RATE = re.compile(r"^(?P<rate>\d+(?:\.\d+)?) Gb/sec(?: \((?P<detail>[^)]*)\))?$")


def _port_guid(gid: str | None, link_layer: str | None) -> str | None:
    if gid is None or link_layer != "InfiniBand" or not gid.lower().startswith("fe80:"):
        return None
    groups = gid.split(":")
    if len(groups) != 8:
        return None
    return "0x" + "".join(group.zfill(4) for group in groups[4:]).lower()


def _port_ibstatus(number: int, fields: dict[str, str]) -> IbPort:
    kind = "ibstatus"
    rate = fields.get("rate")
    rate_gbps: float | None = None
    detail: str | None = None
    if rate is not None:
        match = _RATE.match(rate)
        if match is None:
            raise ParseError(f"{kind}: rate {rate!r} is not 'N Gb/sec (detail)'")
        rate_gbps, detail = float(match.group("rate")), match.group("detail")
    gid = fields.get("default gid")
    gid = None if gid in (None, "unknown") else gid
    link_layer = fields.get("link_layer")

    def lid(key: str) -> int | None:
        value = fields.get(key)
        return (
            int(value, 16)
            if value is not None and re.match(r"^0x[0-9a-fA-F]+$", value)
            else (int_or_none(kind, key, value))
        )

    return IbPort(
        port=number,
        state=_state(kind, fields.get("state"), _STATES, "port state"),
        physical_state=_state(kind, fields.get("phys state"), _PHYS, "physical state"),
        rate_gbps=rate_gbps,
        rate_detail=detail,
        link_layer=link_layer,
        base_lid=lid("base lid"),
        sm_lid=lid("sm lid"),
        port_guid=_port_guid(gid, link_layer),
        gid=gid,
    )


def parse_ibstatus(text: str) -> IbReport:
    """Parse ``ibstatus``; ports of one device are grouped into one CA."""
    kind = "ibstatus"
    check_text(kind, text)
    blocks: list[tuple[str, int, dict[str, str]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if (match := _DEVICE.match(line)) is not None:
            blocks.append((match.group("name"), int(match.group("port")), {}))
        elif not blocks:
            raise ParseError(
                f"{kind}: line {number} comes before any 'Infiniband device' line: "
                f"{snippet(line)!r}"
            )
        elif (kv := _KV.match(line)) is not None:
            blocks[-1][2][kv.group("key")] = kv.group("value").strip()
        else:
            raise ParseError(f"{kind}: unexpected line {number}: {snippet(line)!r}")
    if not blocks:
        raise ParseError(f"{kind}: no \"Infiniband device '<name>' port N status:\" line")
    cas: dict[str, list[IbPort]] = {}
    for name, port, fields in blocks:
        cas.setdefault(name, []).append(_port_ibstatus(port, fields))
    return IbReport(
        "ibstatus",
        tuple(
            IbCa(name, None, None, None, None, None, tuple(ports)) for name, ports in cas.items()
        ),
    )
