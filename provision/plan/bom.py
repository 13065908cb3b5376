"""Bill of materials: nodes, switches, cables by SKU and length, transceivers, PDUs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from provision.models.catalog import Catalog
from provision.plan.cabling import Cable
from provision.plan.fabric import Switch
from provision.plan.layout import Node, Rack


@dataclass(frozen=True, slots=True)
class BomLine:
    category: str
    sku: str
    description: str
    quantity: int


def plan_bom(catalog: Catalog, racks: Sequence[Rack], nodes: Sequence[Node],
             switches: Sequence[Switch], cables: Sequence[Cable], ufm: int) -> list[BomLine]:
    lines: list[BomLine] = []
    for sku, qty in sorted(Counter(n.type for n in nodes).items()):
        lines.append(BomLine("node", sku, catalog.nodes[sku].model, qty))
    for sku, qty in sorted(Counter(s.model for s in switches).items()):
        lines.append(BomLine("switch", sku, catalog.switches[sku].model, qty))
    if ufm:
        lines.append(BomLine("appliance", "ufm", "UFM fabric manager appliance", ufm))
    for (sku, length), qty in sorted(Counter((c.sku, c.length_m) for c in cables).items()):
        lines.append(BomLine("cable", f"{sku}-{length:g}m", f"{catalog.cables[sku].medium} "
                             f"{length:g} m", qty))
    halves: Counter[str] = Counter()
    for c in cables:
        for optic in (c.a_optic, c.b_optic):
            if optic:
                halves[optic] += 2 // catalog.transceivers[optic].ports  # twin-port: 1 half
    for sku, h in sorted(halves.items()):
        t = catalog.transceivers[sku]
        lines.append(BomLine("transceiver", sku, f"{t.form_factor} {t.ports}x{t.speed_gbps}G "
                             f"{t.fiber.upper()} {t.reach_m:g} m", math.ceil(h / 2)))
    used = {n.rack for n in nodes} | {s.rack for s in switches if s.rack}
    pdus = sum(r.pdus for r in racks if r.name in used)
    if pdus:
        lines.append(BomLine("pdu", "pdu", "rack PDU", pdus))
    lines.append(BomLine("rack", "rack", "racks with equipment", len(used)))
    return lines
