"""Consistency of a merged hardware catalog: facts one SKU entry cannot check on its own.

Each problem names the entry and field by its path (the message does not repeat it) in the catalog (``("cables", "x",
"transceiver")``) so the loader can point at the file and line that wrote it, whether a
built-in file or a site's own catalog file. Runs after every file is merged, because a site
file may add a transceiver that a cable in another file names.
"""

from __future__ import annotations

from collections.abc import Iterator

from provision.models.catalog import Catalog, NodeType

Problem = tuple[tuple[str, ...], str, str, str]
"""(path, code, message, fix hint)."""


def catalog_problems(cat: Catalog) -> Iterator[Problem]:
    """Every inconsistency in ``cat``, in catalog order."""
    for name, sw in cat.switches.items():
        where = ("switches", name)
        if sw.ports != sw.cages * sw.ports_per_cage:
            yield ((*where, "ports"), "GPU002", f"{sw.ports} ports but {sw.cages} "
                   f"cages x {sw.ports_per_cage} ports per cage = "
                   f"{sw.cages * sw.ports_per_cage}", "make ports = cages x ports_per_cage")
        if sw.ports < 2:
            yield ((*where, "ports"), "GPU002", f"{sw.ports} port cannot carry "
                   "both down- and uplinks", "give the radix in logical ports (e.g. 64)")
        if sw.technology == "infiniband" and sw.ib_speed is None:
            yield (where, "GPU002", "an InfiniBand switch needs ib_speed",
                   "set ib_speed: EDR, HDR, NDR or XDR")
        if sw.technology == "ethernet" and sw.ib_speed is not None:
            yield ((*where, "ib_speed"), "GPU002", "an Ethernet switch has no "
                   "InfiniBand speed", "remove ib_speed or set technology: infiniband")
        if sw.typical_power_kw > sw.max_power_kw:
            yield ((*where, "typical_power_kw"), "GPU002", f"typical power "
                   f"{sw.typical_power_kw:g} kW above its maximum {sw.max_power_kw:g} kW",
                   "typical_power_kw is the expected draw, at most max_power_kw")
    for name, node in cat.nodes.items():
        yield from _gpu_facts(name, node)
        if node.typical_power_kw > node.max_power_kw:
            yield (("nodes", name, "typical_power_kw"), "GPU002", f"typical "
                   f"power {node.typical_power_kw:g} kW above its maximum "
                   f"{node.max_power_kw:g} kW", "typical_power_kw is the expected draw, at "
                   "most max_power_kw")
    for name, cable in cat.cables.items():
        where = ("cables", name)
        lengths = cable.lengths_m
        if not lengths:
            yield ((*where, "lengths_m"), "GPU002", "no purchasable lengths",
                   "list the lengths it is sold in, ascending")
        elif any(b <= a for a, b in zip(lengths, lengths[1:], strict=False)):
            yield ((*where, "lengths_m"), "GPU002", f"lengths "
                   f"{', '.join(f'{x:g}' for x in lengths)} are not ascending",
                   "list each length once, shortest first")
        elif lengths[-1] > cable.max_length_m:
            yield ((*where, "lengths_m"), "GPU002", f"a {lengths[-1]:g} m length "
                   f"is longer than its {cable.max_length_m:g} m reach", "drop the length or "
                   "raise max_length_m")
        for attr in ("transceiver", "host_transceiver", "host_twin_transceiver"):
            ref = getattr(cable, attr)
            if ref is not None and ref not in cat.transceivers:
                yield ((*where, attr), "GPU126", f"{attr} {ref!r} is not in the "
                       "catalog", f"use one of {', '.join(sorted(cat.transceivers))} or add it "
                       "under transceivers:")
    for name, pdu in cat.pdus.items():
        rated = pdu.voltage_v * pdu.current_a * (3 ** 0.5 if pdu.phases == 3 else 1) / 1000
        if pdu.feed_kw > rated * 1.005:
            yield (("pdus", name, "feed_kw"), "GPU002", f"feed_kw {pdu.feed_kw:g} is more "
                   f"than its {pdu.phases}-phase {pdu.voltage_v} V {pdu.current_a:g} A input "
                   f"carries ({rated:.2f} kW)", "give the continuous kW the PDU delivers")


_GPU_FACTS = ("gpu_model", "gpu_generation", "form_factor")


def _gpu_facts(name: str, node: NodeType) -> Iterator[Problem]:
    """A node with GPUs says which ones; a node without names no GPU facts (nothing
    invented: a storage server is not a zero-GPU DGX)."""
    where = ("nodes", name)
    if node.gpus:
        for attr in (*_GPU_FACTS, "gpu_memory_gib"):
            if not getattr(node, attr):
                yield ((*where, "gpus"), "GPU002", f"{node.gpus} GPUs but no {attr}",
                       f"set {attr} (or gpus: 0 for a node without GPUs)")
        return
    for attr in (*_GPU_FACTS, "gpu_memory_gib", "nvswitch"):
        if getattr(node, attr):
            yield ((*where, attr), "GPU002", f"{attr} set on a node without GPUs",
                   f"remove {attr} or give the node's gpus")
