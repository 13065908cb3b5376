"""Assemble the whole Plan of a site from the pure planners."""

from __future__ import annotations

import gc
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from provision.errors import PlanError
from provision.models.catalog import Catalog
from provision.models.site import ComputeFabric, EthernetFabric, Site
from provision.plan.addressing import Address, Subnet, floor_grid, plan_addresses
from provision.plan.bom import BomLine, plan_bom, plan_future_bom
from provision.plan.cabling import Cable, CableMaker, End, host_ports, link_speed_gbps
from provision.plan.ethernet import TOR_UPLINKS, build_ethernet
from provision.plan.fabric import FabricPlan, Link, Switch, build_compute, split_future
from provision.plan.growth import design_members, design_switches
from provision.plan.layout import Node, Rack, layout_racks, place_nodes
from provision.plan.management import (
    MGMT_GBPS,
    Managed,
    cable_management,
    reserve_oob_tors,
    seat_reserved,
)
from provision.plan.oversubscription import ratios as oversubscription
from provision.plan.power import PowerPlan, plan_power
from provision.plan.racking import (
    Appliance,
    RackSpace,
    place_appliance,
    place_switches,
    resolve_racks,
)

SCHEMA_VERSION = 1


@dataclass
class Plan:
    """Everything computed from a site: the single source every renderer reads."""

    site: Site
    catalog: Catalog
    racks: list[Rack]
    nodes: list[Node]
    fabrics: dict[str, FabricPlan]
    switches: list[Switch]
    cables: list[Cable]
    subnets: list[Subnet]
    addresses: list[Address]
    power: PowerPlan
    bom: list[BomLine]
    appliances: list[Appliance] = field(default_factory=list)
    future_switches: list[Switch] = field(default_factory=list)
    """Switches planned for a fabric's design capacity, not installed yet (placed, powered,
    addressed in reserve; not in ``switches``)."""
    future_cables: list[Cable] = field(default_factory=list)
    """Cables that reach a future switch (not in ``cables``)."""
    ufm_rack: str = ""
    rails: int = 0
    schema_version: int = SCHEMA_VERSION
    _by_device: dict[str, list[Address]] = field(default_factory=dict, repr=False)
    _summary: dict[str, Any] = field(default_factory=dict, repr=False)
    """:func:`summary`, once computed (plan.json, plan.html and the CLI all print it)."""

    def addresses_of(self, device: str) -> list[Address]:
        """Addresses of one device (node or switch), in plan order."""
        if not self._by_device:
            for a in self.addresses:
                self._by_device.setdefault(a.device, []).append(a)
        return self._by_device.get(device, [])

    def ib_names(self) -> list[str]:
        """Names of the InfiniBand fabrics of the plan: ``compute`` first, then the site's
        further fabrics in file order."""
        return [n for n in self.site.fabrics.ib() if n in self.fabrics]

    def ib_fabric_of(self, node: str) -> str | None:
        """The InfiniBand fabric ``node``'s HCAs are cabled to (None: on none)."""
        return next((lk.fabric for lk in self.node_fabric_links() if lk.a == node), None)

    def node_fabric_links(self) -> list[Link]:
        """Host-to-leaf links of every InfiniBand fabric, fabric after fabric."""
        return [lk for n in self.ib_names() for lk in self.fabrics[n].links
                if lk.kind == "node-leaf"]


def _ends(nodes: list[Node], switches: list[Switch], catalog: Catalog,
          appliances: list[Appliance]) -> tuple[dict[str, End], dict[str, str]]:
    """Where every link end sits, and what it is (node type, switch or appliance model)."""
    ports = {t: host_ports(catalog.nodes[t]) for t in {n.type for n in nodes}}
    ends = {n.name: End(n.rack, n.u, True, 1, ports[n.type] or None) for n in nodes}
    what = {n.name: n.type for n in nodes}
    for s in switches:
        ends[s.name] = End(s.rack, s.u, False, catalog.switches[s.model].ports_per_cage)
        what[s.name] = s.model
    for a in appliances:
        ends[a.name] = End(a.rack, a.u, True)
        what[a.name] = a.model
    return ends, what


def _link_gbps(catalog: Catalog, fabric: str, kind: str, a: str, b: str, a_is_switch: bool,
               ib_speed: str | None) -> int:
    """Speed of a link from ``a`` (node type or switch model) up to switch model ``b``."""
    if kind == "mgmt":
        return MGMT_GBPS
    nic = 0
    if kind == "node-tor":
        t = catalog.nodes[a]
        nic = {"oob": 1, "inband": t.inband_nic_gbps, "storage": t.storage_nic_gbps}[fabric]
    sw_gbps = catalog.switches[b].speed_gbps
    if a_is_switch:
        sw_gbps = min(sw_gbps, catalog.switches[a].speed_gbps)
    return link_speed_gbps(fabric, kind, ib_speed, nic, sw_gbps)


def _place_by_tier(space: RackSpace, fab: FabricPlan, nodes: list[Node], net_racks: list[str],
                   catalog: Catalog) -> None:
    """Place leaves near their first host, then each upper tier near its first lower switch."""
    where = {n.name: n.rack for n in nodes}
    first_lower: dict[str, str] = {}
    for lk in fab.links:
        first_lower.setdefault(lk.b, lk.a)
    for tier in ("leaf", "spine", "core"):
        batch = [s for s in fab.switches if s.tier == tier]
        anchors = {s.name: where[first_lower[s.name]] for s in batch
                   if first_lower.get(s.name) in where}
        place_switches(space, batch, net_racks, catalog, anchors, fab.name)
        where.update((s.name, s.rack) for s in batch)


RESERVED_FABRIC_NAMES = re.compile(r"^(compute|storage|inband|oob|(p|su|pod|core|plane)\d+)$")
"""Names a further InfiniBand fabric cannot take: another network's name, or one whose
switch-name prefix ``ib-<name>-`` could meet the compute fabric's own switch names."""


def ib_fabrics(site: Site) -> dict[str, ComputeFabric]:
    """The site's InfiniBand fabrics by name, checked: PlanError for a reserved name, a node
    group on two fabrics, or a UFM on a further fabric (lint reports these as GPU147-149)."""
    owner: dict[str, str] = {}
    for fname, cf in site.fabrics.ib().items():
        if fname in site.fabrics.infiniband and RESERVED_FABRIC_NAMES.match(fname):
            raise PlanError(f"InfiniBand fabric name {fname!r} is reserved; rename it")
        if fname != "compute" and cf.topology == "rail-optimized" and cf.ufm_ports:
            raise PlanError(f"{fname} fabric: UFM ports are planned on the compute fabric only; "
                            "set ufm_ports: 0 (its subnet manager runs on a top-tier switch)")
        for g in cf.node_groups:
            if g in owner and owner[g] != fname:
                raise PlanError(f"node group {g} is on two InfiniBand fabrics "
                                f"({owner[g]} and {fname})")
            owner[g] = fname
    return site.fabrics.ib()


def build_plan(site: Site, catalog: Catalog) -> Plan:
    """Compute the Plan; raises PlanError when the site cannot be built as written."""
    # A plan is millions of long-lived records (half a million cables at 131,072 GPUs) and
    # no reference cycles: the cyclic collector, even at the CLI's raised thresholds, would
    # walk them again and again as they are made (a third of the planning time at that
    # size). It is off while the planners run and back as it was afterwards.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_plan(site, catalog)
    finally:
        if enabled:
            gc.enable()


def _build_plan(site: Site, catalog: Catalog) -> Plan:
    racks = layout_racks(site)
    grid = floor_grid(site)
    nodes = place_nodes(site, catalog, racks)
    space = RackSpace(racks, nodes, catalog)
    boot = {g.name: g.boot_interface for g in site.node_groups}
    oob_cfg = site.fabrics.oob
    oob_model = catalog.switches.get(oob_cfg.switch) if oob_cfg is not None else None
    reserved: dict[str, list[int]] = {}
    net_racks_all: list[str] = []
    if oob_cfg is not None and oob_model is not None:
        nets: list[ComputeFabric | EthernetFabric] = [*ib_fabrics(site).values()]
        nets += [f for f in (site.fabrics.storage, site.fabrics.inband, oob_cfg)
                 if f is not None]
        refs = [r for f in nets for r in f.network_racks]
        net_racks_all = list(dict.fromkeys(resolve_racks(refs, racks)))
        reserved = reserve_oob_tors(space, net_racks_all, oob_cfg.per_rack, oob_model)
    fabrics: dict[str, FabricPlan] = {}
    appliances: list[Appliance] = []
    rails = 0
    fabric_nodes: list[Node] = []
    further_ib: dict[str, tuple[list[Node], int]] = {}
    ib = ib_fabrics(site)
    for fname, cf in ib.items():
        groups = set(cf.node_groups)
        members = [n for n in nodes if n.group in groups]
        design = design_members(site, catalog, cf, members, racks) if cf.design else members
        fab = build_compute(cf, design, catalog, fname)
        net_racks = resolve_racks(cf.network_racks, racks)
        _place_by_tier(space, fab, design, net_racks, catalog)
        if len(design) > len(members):
            hcas = len(catalog.nodes[members[0].type].compute_hcas)
            split_future(fab, {n.name for n in members},
                         fab.endpoints - (len(design) - len(members)) * hcas)
        if fname == "compute":
            fabric_nodes = members
            rails = len(catalog.nodes[members[0].type].compute_hcas) if members else 0
        else:
            further_ib[fname] = (members, len(catalog.nodes[members[0].type].compute_hcas)
                                 if members else 0)
        if any(lk.kind == "ufm-leaf" for lk in fab.links):
            if cf.ufm_appliance not in catalog.appliances:
                raise PlanError(f"{fname} fabric references unknown appliance "
                                f"{cf.ufm_appliance!r} (ufm_appliance)")
            ufm = Appliance("ufm" if fname == "compute" else f"ufm-{fname}", cf.ufm_appliance,
                            "ufm")
            place_appliance(space, ufm, net_racks, catalog, f"{fname} fabric")
            appliances.append(ufm)
        fabrics[fname] = fab
    ib_switches = [s for f in fabrics.values() for s in design_switches(f)]
    future = {s.name for f in fabrics.values() for s in f.future_switches}
    # Every network rack gets its OOB ToR (whatever lands in it later), so which racks have
    # one never depends on where the Ethernet aggregation switches go.
    have = {n.rack for n in nodes}
    want = {s.rack for s in ib_switches} | {a.rack for a in appliances} | set(net_racks_all)
    extra = [r.name for r in racks if r.name in want and r.name not in have]
    # Ethernet switches: ToRs first, then aggregation switches in block order across fabrics
    # (block 1 of storage, in-band, OOB, then block 2, ...), so a block opened by growth goes
    # after every built one and moves nothing.
    eth: list[tuple[int, int, Switch, list[str], str]] = []
    for fi, name in enumerate(("storage", "inband", "oob")):
        ef = getattr(site.fabrics, name)
        if ef is None:
            continue
        cap = site.addressing.capacity
        fab = build_ethernet(name, ef, nodes, catalog, boot, extra if name == "oob" else (),
                             grid, cap.rows_per_hall * cap.racks_per_row)
        if name == "oob" and oob_model is not None:
            seat_reserved(space, fab, reserved, oob_model)
        where = resolve_racks(ef.network_racks, racks)
        for sw in fab.switches:
            # ToRs, block 1's aggregation, the core pair, then the later blocks; with a core
            # pair per hall (numbered the block before the hall's first), each hall's pair
            # after that hall's first block, the site core after the first hall's pair.
            if sw.tier == "core" and sw.pod is not None:
                eth.append((sw.pod + 1, 3 + fi, sw, where, name))
            elif sw.tier == "site-core":
                eth.append((2, 6 + fi, sw, where, name))
            elif sw.tier == "core":
                eth.append((1, 3 + fi, sw, where, name))
            else:
                eth.append((0 if sw.tier == "tor" else sw.pod or 0, fi, sw, where, name))
        fabrics[name] = fab
    eth.sort(key=lambda e: (e[0], e[1]))
    # Aggregation switches go to the network rack nearest their block's first ToR (each
    # hall's aggregation stays in that hall), the core pair near the first block's; the two
    # switches of a pair go to different racks unless the fabric allows one rack.
    below: dict[str, str] = {}
    apart: dict[str, Switch] = {}
    where_is: dict[str, Switch] = {}
    for name in ("storage", "inband", "oob"):
        ef = getattr(site.fabrics, name)
        if name not in fabrics or ef is None:
            continue
        fab = fabrics[name]
        where_is.update((s.name, s) for s in fab.switches)
        for lk in fab.links:
            if lk.kind in ("tor-agg", "agg-core", "core-site"):
                below.setdefault(lk.b, lk.a)
        if not ef.pairs_in_one_rack:
            pairs: dict[tuple[str, int | None], list[Switch]] = {}
            for s in fab.switches:
                if s.tier != "tor":
                    pairs.setdefault((s.tier, s.pod), []).append(s)
            for pair in pairs.values():
                for first, second in zip(pair, pair[1:], strict=False):
                    apart[second.name] = first
    for _, _, sw, where, name in eth:
        lower = where_is.get(below.get(sw.name, ""))
        at = {sw.name: lower.rack} if lower is not None and lower.rack else {}
        place_switches(space, [sw], where, catalog, at, name, apart)
    switches = [s for f in fabrics.values() for s in f.switches]
    future_switches = [s for f in fabrics.values() for s in f.future_switches]
    power = plan_power(site, catalog, racks, nodes, switches + future_switches, appliances)
    # Every rack with a built device has its PDUs, each managed on the OOB network.
    built = {n.rack for n in nodes} | {s.rack for s in switches if s.rack} | \
        {a.rack for a in appliances}
    pdus = {f.rack: [p.name for p in f.pdus] for f in power.feeds if f.rack in built}
    if "oob" in fabrics and oob_cfg is not None:
        # Management ports in placement order: a rack's PDUs (their number is the rack
        # spec's) first, then what growth adds after what is built.
        managed = [Managed(name, rack) for rack, names in pdus.items() for name in names]
        managed += [Managed(s.name, s.rack) for s in ib_switches if s.rack]
        managed += [Managed(a.name, a.rack) for a in appliances]
        managed += [Managed(e[2].name, e[2].rack) for e in eth if e[2].rack]
        up = TOR_UPLINKS if oob_cfg.spine_switch else 0
        cable_management(fabrics["oob"], managed, racks, catalog, up)
        oob = fabrics["oob"]
        oob.future_links = [lk for lk in oob.links if lk.a in future]
        oob.links = [lk for lk in oob.links if lk.a not in future]
    ends, what = _ends(nodes, switches + future_switches, catalog, appliances)
    for r in racks:
        for name in pdus.get(r.name, ()):  # a vertical PDU's network port, at its foot
            ends[name], what[name] = End(r.name, 1, True), r.pdu
    rack_by_name = {r.name: r for r in racks}
    cables: list[Cable] = []
    group_of = {n.name: n.group for n in nodes}
    future_cables: list[Cable] = []
    for fname, fab in fabrics.items():
        ib_cfg = ib.get(fname)
        maker = CableMaker(catalog, "ethernet" if ib_cfg is None else "infiniband", rack_by_name)
        ib_speed = None if ib_cfg is None else ib_cfg.speed
        role = fname if ib_cfg is None else "compute"  # every IB fabric cables like compute
        ef = None if ib_cfg is not None else getattr(site.fabrics, fname, None)
        uplink = ef.uplink_gbps if ef is not None else None
        node_mode = ef.node_port_gbps if ef is not None else None
        speeds: dict[tuple[str, str, str, bool], int] = {}
        gbps: list[int] = []
        # Future links are cabled with the built ones, so a cage's medium and a cable's
        # label never change when its future half is installed.
        links = fab.links + fab.future_links
        for lk in links:
            key = (lk.kind, what[lk.a], what[lk.b], not ends[lk.a].is_host)
            g = speeds.get(key)
            if g is None:
                g = speeds[key] = _link_gbps(catalog, role, *key, ib_speed)
            if node_mode is not None and lk.kind == "node-tor":
                g = node_mode if isinstance(node_mode, int) else \
                    node_mode.get(group_of[lk.a], g)
            elif uplink is not None and lk.kind == "tor-agg":
                g = uplink
            gbps.append(g)
        made = maker.cables(links, ends, gbps)
        cables.extend(made[:len(fab.links)])
        future_cables.extend(made[len(fab.links):])
    addressed = [s for f in fabrics.values() for s in design_switches(f)]
    subnets, addresses = plan_addresses(site, catalog, nodes, fabric_nodes, rails, addressed,
                                        boot, [a.name for a in appliances], future,
                                        further_ib, pdus)
    bom = plan_bom(catalog, racks, nodes, switches, cables, appliances)
    if future_switches:
        bom += plan_future_bom(catalog, future_switches, future_cables, cables)
    ufm_rack = next((a.rack for a in appliances if a.role == "ufm"), "")
    return Plan(site, catalog, racks, nodes, fabrics, switches, cables, subnets, addresses,
                power, bom, appliances, ufm_rack=ufm_rack, rails=rails,
                future_switches=future_switches, future_cables=future_cables)


def _ib_summary(f: FabricPlan) -> dict[str, Any]:
    """Sizing facts of one InfiniBand fabric for :func:`summary`."""
    return {
        "topology": f.topology, "tiers": f.tiers,
        "endpoints": f.endpoints, "max_endpoints": f.max_endpoints,
        **({"scalable_units": [{"nodes": n, "slots": k} for n, k in f.units]}
           if f.units else {}),
        **({"design_endpoints": f.design_endpoints,
            "future_switches": len(f.future_switches),
            "future_links": len(f.future_links)} if f.design_endpoints else {})}


def summary(plan: Plan) -> dict[str, Any]:
    """Counts for humans and machines (``gpuctl plan --format json``); computed once per
    plan (a plan is not changed once built), a fresh copy of the top level each call."""
    if not plan._summary:
        plan._summary.update(_summary(plan))
    return dict(plan._summary)


def _summary(plan: Plan) -> dict[str, Any]:
    gpus = sum(plan.catalog.nodes[n.type].gpus for n in plan.nodes)
    sw: dict[str, dict[str, int]] = {}
    for f in plan.fabrics.values():
        c = Counter(
            f"{s.tier}" + (f"/plane{s.plane}" if s.plane is not None else "") for s in f.switches)
        sw[f.name] = dict(sorted(c.items()))
    links = {f.name: dict(sorted(Counter(lk.kind for lk in f.links).items()))
             for f in plan.fabrics.values()}
    # physical cables (a twin-port DAC carrying two links counts once); links are above
    cables = dict(sorted(Counter(f"{fab}/{medium}" for fab, medium, _ in
                                 {(c.fabric, c.medium, c.cable) for c in plan.cables}).items()))
    optics = {b.sku: b.quantity for b in plan.bom if b.category == "transceiver"}
    addrs = dict(sorted(Counter(a.pool for a in plan.addresses).items()))
    compute = plan.fabrics.get("compute")
    extra = {n: _ib_summary(plan.fabrics[n]) for n in plan.ib_names() if n != "compute"}
    over: dict[str, dict[str, float]] = {}
    for r in oversubscription(plan.site, plan.catalog, plan.fabrics, plan.nodes):
        over.setdefault(r.fabric, {})[r.tier] = round(r.ratio, 2)
    return {
        "schema_version": plan.schema_version,
        "site": plan.site.site.name,
        "nodes": len(plan.nodes),
        "gpus": gpus,
        "racks_used": len({n.rack for n in plan.nodes} | {s.rack for s in plan.switches}),
        "compute_fabric": None if compute is None else _ib_summary(compute),
        **({"infiniband": extra} if extra else {}),
        "switches": sw,
        "links": links,
        "cables": cables,
        "optics": optics,
        "addresses": addrs,
        # per Ethernet network and tier: the worst switch's downlink:uplink bandwidth
        "oversubscription": over,
        "power_kw": {"it_nameplate": plan.power.it_nameplate_kw,
                     "it_expected": plan.power.it_expected_kw,
                     "facility": plan.power.facility_kw},
        "annual_mwh": plan.power.annual_mwh,
        "annual_cost": plan.power.annual_cost,
        "currency": plan.power.currency,
    }
