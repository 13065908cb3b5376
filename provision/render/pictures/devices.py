"""What sits where: every rack-mounted device of a Plan, by rack, with its drawing category.

The one place the pictures enumerate the Plan's device lists; the elevations, the floor plan
and plan.html only read ``rack_contents``. A new kind of device in the Plan shows up in every
picture once it is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.plan.build import Plan
from provision.render.pictures.svg import Style

KINDS: dict[str, Style] = {
    "gpu": Style("#cfe2f3", "#3d6d99", "GPU node"),
    "storage": Style("#d9ead3", "#4f7f3f", "storage node"),
    "service": Style("#ead1dc", "#8e4f6d", "head / mgmt node"),
    "appliance": Style("#f4cccc", "#a04040", "appliance"),
    "ib": Style("#fce5cd", "#b45f06", "InfiniBand switch"),
    "eth-storage": Style("#fff2cc", "#8a6d00", "storage switch"),
    "eth-inband": Style("#e1d5f0", "#674ea7", "in-band switch"),
    "eth-oob": Style("#e6e6e6", "#666666", "OOB switch"),
    "eth": Style("#d0e0e3", "#45818e", "Ethernet switch"),
    "pdu": Style("#cccccc", "#444444", "PDU (0U)"),
}
"""Drawing category -> colours and legend words, in legend order."""

ROLE_KIND = {"gpu": "gpu", "storage": "storage", "mgmt": "service", "head": "service"}


@dataclass(frozen=True, slots=True)
class Placed:
    """One device in a rack: its lowest U and height (0U devices have ``units == 0``)."""

    name: str
    kind: str
    model: str
    rack: str
    u: int
    units: int
    what: str
    """Short description for labels and tooltips, e.g. ``leaf SU 1`` or ``gpu node``."""


def _switch_kind(fabric: str, technology: str) -> str:
    if technology == "infiniband":
        return "ib"
    return f"eth-{fabric}" if f"eth-{fabric}" in KINDS else "eth"


def _switch_what(tier: str, plane: int | None, su: int | None, pod: int | None,
                 fabric: str) -> str:
    parts = [fabric, tier]
    if plane is not None:
        parts.append(f"plane {plane}")
    if su is not None:
        parts.append(f"SU {su}")
    if pod is not None:
        parts.append(f"pod {pod}")
    return " ".join(parts)


def rack_contents(plan: Plan) -> dict[str, list[Placed]]:
    """Rack name -> its devices, top U first (only racks that hold something appear).
    Built on every call: :func:`provision.render.pictures.render_pictures` builds it once
    and passes it to every picture."""
    out: dict[str, list[Placed]] = {}
    for n in plan.nodes:
        out.setdefault(n.rack, []).append(Placed(
            n.name, ROLE_KIND.get(n.role, "service"), n.type, n.rack, n.u, n.rack_units,
            f"{n.role} node, group {n.group}"))
    for s in plan.switches:
        if not s.rack:
            continue
        model = plan.catalog.switches[s.model]
        out.setdefault(s.rack, []).append(Placed(
            s.name, _switch_kind(s.fabric, model.technology), s.model, s.rack, s.u,
            model.rack_units, _switch_what(s.tier, s.plane, s.su, s.pod, s.fabric)))
    for a in plan.appliances:
        spec = plan.catalog.appliances[a.model]
        out.setdefault(a.rack, []).append(Placed(
            a.name, "appliance", a.model, a.rack, a.u, spec.rack_units,
            f"{a.role} appliance ({spec.model})"))
    for devices in out.values():
        devices.sort(key=lambda d: (-(d.u + d.units), d.name))
    return out


def rack_kind(devices: list[Placed]) -> str:
    """A rack's category on the floor plan: what most of its rack units hold."""
    if not devices:
        return "empty"
    units: dict[str, int] = {}
    for d in devices:
        k = "network" if d.kind in ("ib", "eth", "appliance", "pdu") or \
            d.kind.startswith("eth-") else d.kind
        units[k] = units.get(k, 0) + max(d.units, 0)
    return max(sorted(units), key=units.__getitem__)
