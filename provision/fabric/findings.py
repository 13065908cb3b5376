"""What ``gpuctl fabric verify`` reports: findings about cables and devices, and the result.

One finding per physical problem: two cables swapped are *one* ``swapped`` finding naming
both cables, a host rail on the wrong leaf is one ``wrong-leaf`` finding (its planned port
is not also reported missing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from provision.plan.ibnames import UFM, ufm_interface

KINDS: dict[str, str] = {
    "missing": "a planned cable (inside the scope) is not there",
    "swapped": "two cables are in each other's ports",
    "wrong-leaf": "a host HCA lands on another leaf (another rail or plane) than planned",
    "wrong-port": "a cable lands on the planned switch (or host) but on another port",
    "miscabled": "a cable lands on another switch or device than planned",
    "unexpected": "a cable the plan does not have, between planned devices",
    "wrong-width": "a link is up at another width than 4x (e.g. 1x: a bad lane or cable)",
    "wrong-speed": "a link is up at another speed than the fabric's (e.g. HDR where NDR)",
    "unknown-device": "a device that is not in the plan (unrecognised node description)",
    "duplicate-description": "several devices carry the node description of one planned device",
    "not-yet-present": "a planned cable outside the scope is not there yet (not an error)",
}

SEVERITIES = ("error", "warning", "info")
"""error: inside the scope (fails verify); warning: the same problem outside the scope;
info: a planned cable outside the scope is not there yet."""


def fmt_end(name: str, port: int) -> str:
    """``ib-leaf001[5]``; a host HCA's only port is left out (``dgx-001 mlx5_0``); the UFM
    appliance's CA ports are shown by their interface names (``ufm ib2`` is port 3)."""
    if name == UFM and port >= 1:
        return f"{UFM} {ufm_interface(port)}"
    return name if port == 1 and " " in name else f"{name}[{port}]"


@dataclass(frozen=True, slots=True)
class LinkView:
    """One end-to-end link as a finding shows it (planned or observed)."""

    a: str
    a_port: int
    b: str
    b_port: int
    cable: str = ""
    b_cage: str = ""
    a_rack: str = ""
    b_rack: str = ""
    width: str | None = None
    speed: str | None = None
    a_guid: str | None = None
    b_guid: str | None = None
    a_label: str = ""
    """The lower end as printed on the chassis (``OSFP4P2``) or panel (``17/1``), planned
    links only; empty where it is the port name."""

    def text(self, planned: bool) -> str:
        a = fmt_end(self.a, self.a_port)
        if planned and self.a_label:
            a += f" ({self.a_label})" if " " in self.a else f" (cage {self.a_label})"
        out = f"{a} - {fmt_end(self.b, self.b_port)}"
        if planned and self.b_cage and self.b_cage != str(self.b_port):
            out += f" (cage {self.b_cage})"
        if not planned and (self.width or self.speed):
            out += f" {self.width or '?'}{self.speed or '?'}"
        return out

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (
            ("cable", self.cable), ("a", self.a), ("a_port", self.a_port), ("a_guid", self.a_guid),
            ("a_rack", self.a_rack), ("a_label", self.a_label), ("b", self.b),
            ("b_port", self.b_port),
            ("b_guid", self.b_guid), ("b_rack", self.b_rack), ("b_cage", self.b_cage),
            ("width", self.width), ("speed", self.speed)) if v not in (None, "")}


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key with numbers compared as numbers (``IB:leaf:9`` before ``IB:leaf:10``)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _DIGITS.split(text) if p)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: what was planned, what was observed, where to go and fix it."""

    kind: str
    severity: str
    message: str
    rack: str = ""
    cables: tuple[str, ...] = ()
    planned: tuple[LinkView, ...] = ()
    observed: tuple[LinkView, ...] = ()
    devices: tuple[str, ...] = ()

    @property
    def sort_key(self) -> tuple[Any, ...]:
        first = self.cables[0] if self.cables else (self.devices[0] if self.devices else "")
        return (natural_key(self.rack), natural_key(first), self.kind, self.message)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "severity": self.severity,
                               "message": self.message, "rack": self.rack,
                               "cables": list(self.cables),
                               "planned": [p.to_json() for p in self.planned],
                               "observed": [o.to_json() for o in self.observed]}
        if self.devices:
            out["devices"] = list(self.devices)
        return out


@dataclass
class VerifyResult:
    """The outcome of one verification: findings plus what was learned and counted."""

    site: str
    scope: str
    speed: str
    findings: list[Finding] = field(default_factory=list)
    planned_in_scope: int = 0
    planned_total: int = 0
    matched: int = 0
    observed_links: int = 0
    observed_devices: int = 0
    inferred: dict[str, dict[str, str]] = field(default_factory=dict)
    guids: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when everything inside the scope is cabled and up as planned."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + 1
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site, "scope": self.scope, "ok": self.ok, "speed": self.speed,
            "planned_links": self.planned_total, "planned_in_scope": self.planned_in_scope,
            "matched": self.matched, "observed_links": self.observed_links,
            "observed_devices": self.observed_devices, "counts": self.counts(),
            "findings": [f.to_json() for f in self.findings],
            "inferred": self.inferred,
        }
