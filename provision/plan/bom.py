"""Bill of materials: nodes, switches, physical cables by SKU and length, optics, PDUs.

Quantities count things to buy: a twin-port DAC carrying two links is one cable, a twin-port
transceiver is one module per cage that carries fiber. The ``links`` column says how many
logical links (or ports) those things carry.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from provision.models.catalog import Catalog
from provision.plan.cabling import Cable
from provision.plan.fabric import Switch
from provision.plan.layout import Node, Rack
from provision.plan.racking import Appliance


@dataclass(frozen=True, slots=True)
class BomLine:
    category: str
    sku: str
    description: str
    quantity: int
    """Physical items to order."""
    links: int = 0
    """Logical links (cables) or ports (optics) those items carry; 0 where it means nothing."""


def optic_modules(cables: Sequence[Cable]) -> dict[tuple[str, str], str]:
    """The optic in each cage that carries fiber: ``(device, cage) -> transceiver SKU``."""
    modules: dict[tuple[str, str], str] = {}
    for c in cables:
        if c.a_optic:
            modules[(c.a, c.a_module)] = c.a_optic
        if c.b_optic:
            modules[(c.b, c.b_module)] = c.b_optic
    return modules


def plan_bom(catalog: Catalog, racks: Sequence[Rack], nodes: Sequence[Node],
             switches: Sequence[Switch], cables: Sequence[Cable],
             appliances: Sequence[Appliance] = ()) -> list[BomLine]:
    lines: list[BomLine] = []
    for sku, qty in sorted(Counter(n.type for n in nodes).items()):
        lines.append(BomLine("node", sku, catalog.nodes[sku].model, qty))
    for sku, qty in sorted(Counter(s.model for s in switches).items()):
        lines.append(BomLine("switch", sku, catalog.switches[sku].model, qty))
    for sku, qty in sorted(Counter(a.model for a in appliances).items()):
        lines.append(BomLine("appliance", sku, catalog.appliances[sku].model, qty))
    # Links per SKU and length, and the distinct physical cables (labels) among them:
    # counted at C speed (half a million links at 131,072 GPUs), each link its own cable
    # but for the labels several links share (twin-port DACs), counted once per SKU and
    # length.
    links = Counter(map(attrgetter("sku", "length_m"), cables))
    physical = Counter(links)
    per_label = Counter(map(attrgetter("cable"), cables))
    shared = {label for label, n in per_label.items() if n > 1}
    if shared:
        rows = [(c.sku, c.length_m, c.cable) for c in cables if c.cable in shared]
        physical.subtract((sku, length) for sku, length, _ in rows)
        physical.update((sku, length) for sku, length, _ in set(rows))
    for (sku, length), labels in sorted(physical.items()):
        lines.append(BomLine("cable", f"{sku}-{length:g}m", f"{catalog.cables[sku].medium} "
                             f"{length:g} m", labels, links[(sku, length)]))
    modules = Counter(optic_modules(cables).values())
    for sku, qty in sorted(modules.items()):
        t = catalog.transceivers[sku]
        lines.append(BomLine("transceiver", sku, f"{t.form_factor} {t.ports}x{t.speed_gbps}G "
                             f"{t.fiber.upper()} {t.reach_m:g} m", qty, qty * t.ports))
    used = {n.rack for n in nodes} | {s.rack for s in switches if s.rack} | \
        {a.rack for a in appliances}
    pdus: Counter[str] = Counter()
    for r in racks:
        if r.name in used and r.pdus:
            pdus[r.pdu] += r.pdus
    for sku, qty in sorted(pdus.items()):
        p = catalog.pdus[sku]
        lines.append(BomLine("pdu", sku, f"{p.model}: {p.feed_kw:g} kW, {p.outlets_c13}x C13, "
                             f"{p.outlets_c19}x C19", qty))
    lines.append(BomLine("rack", "rack", "racks with equipment", len(used)))
    return lines


def plan_future_bom(catalog: Catalog, switches: Sequence[Switch], cables: Sequence[Cable],
                    built: Sequence[Cable]) -> list[BomLine]:
    """What the design capacity still needs (category ``future <what>``): future switches,
    the physical cables that reach them, and optics for the cages no built cable fills."""
    ahead = plan_bom(catalog, [], [], switches, cables)
    have = optic_modules(built)
    modules = Counter(sku for key, sku in optic_modules(cables).items() if key not in have)
    lines = [dataclasses.replace(b, category=f"future {b.category}") for b in ahead
             if b.category in ("switch", "cable")]
    for sku, qty in sorted(modules.items()):
        t = catalog.transceivers[sku]
        lines.append(BomLine("future transceiver", sku, f"{t.form_factor} {t.ports}x"
                             f"{t.speed_gbps}G {t.fiber.upper()} {t.reach_m:g} m", qty,
                             qty * t.ports))
    return lines

