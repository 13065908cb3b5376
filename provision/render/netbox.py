"""Plan -> NetBox bulk-import files (``netbox/*.csv`` plus ``netbox/device-types.yaml``).

Import in this order (each file's references exist once the previous ones are in):
manufacturers, device-roles, device-types (YAML, NetBox device-type-library format), sites,
locations (halls, rows inside them), racks, devices (with rack position), interfaces, cables,
prefixes, ip-addresses. Columns are NetBox's bulk-import field names.
"""

from __future__ import annotations

import json
import re
from operator import attrgetter
from typing import Any

from provision.plan.build import Plan
from provision.render.csvtext import csv_text as _csv

_SLUG = re.compile(r"[^a-z0-9-]+")
CABLE_TYPES = {"dac": "dac-passive", "acc": "dac-active", "aoc": "aoc", "fiber-mm": "mmf-om4",
               "fiber-sm": "smf-os2", "copper-rj45": "cat6a"}
ETH_TYPES = {1: "1000base-t", 10: "10gbase-x-sfpp", 25: "25gbase-x-sfp28",
             100: "100gbase-x-qsfp28", 200: "200gbase-x-qsfp56", 400: "400gbase-x-osfp",
             800: "800gbase-x-osfp"}
ROLE_COLORS = {"gpu-node": "4caf50", "storage-node": "2196f3", "mgmt-node": "9e9e9e",
               "head-node": "607d8b", "ib-switch": "ff9800", "eth-switch": "795548",
               "ufm": "9c27b0", "pdu": "ffc107"}


def slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")


def _iface_type(plan: Plan, fabric: str, sku: str) -> str:
    cf = plan.site.fabrics.ib().get(fabric)
    if cf is not None:
        return f"infiniband-{cf.speed.lower()}"
    cable = plan.catalog.cables.get(sku)
    return ETH_TYPES.get(cable.speed_gbps if cable else 0, "other")


def netbox_tree(plan: Plan) -> dict[str, str]:
    site = plan.site.site
    cat = plan.catalog
    site_slug = slug(site.name)
    node_types = sorted({n.type for n in plan.nodes})
    sw_models = sorted({s.model for s in plan.switches})
    ap_models = sorted({a.model for a in plan.appliances})
    pdus = [(f.rack, p) for f in plan.power.feeds for p in f.pdus
            if plan.addresses_of(p.name)]  # the PDUs the plan manages (built racks)
    pdu_models = sorted({p.model for _, p in pdus})
    makers = sorted({cat.nodes[t].vendor for t in node_types}
                    | {cat.switches[m].vendor for m in sw_models}
                    | {cat.appliances[m].vendor for m in ap_models}
                    | {cat.pdus[m].vendor for m in pdu_models})
    files: dict[str, str] = {}
    files["netbox/manufacturers.csv"] = _csv(["name", "slug"], [(m, slug(m)) for m in makers])
    files["netbox/device-roles.csv"] = _csv(
        ["name", "slug", "color"], [(r, r, c) for r, c in ROLE_COLORS.items()])
    types: list[str] = []
    for t in node_types:
        nt = cat.nodes[t]
        types.append(_devtype(nt.vendor, nt.model, t, nt.rack_units))
    for m in sw_models:
        st = cat.switches[m]
        types.append(_devtype(st.vendor, st.model, m, st.rack_units))
    for m in ap_models:
        at = cat.appliances[m]
        types.append(_devtype(at.vendor, at.model, m, at.rack_units))
    for m in pdu_models:
        pt = cat.pdus[m]
        types.append(_devtype(pt.vendor, pt.model, m, pt.rack_units))
    files["netbox/device-types.yaml"] = "---\n".join(types)
    files["netbox/sites.csv"] = _csv(["name", "slug", "status", "description"],
                                     [(site.name, site_slug, "active", site.location)])
    locs: list[tuple[str, str, str, str, str]] = []
    for hall in plan.site.halls:
        locs.append((site.name, "", hall.name, slug(f"{hall.name}"), "active"))
        for row in hall.rows:
            locs.append((site.name, hall.name, f"{hall.name}-{row.name}",
                         slug(f"{hall.name}-{row.name}"), "active"))
    files["netbox/locations.csv"] = _csv(["site", "parent", "name", "slug", "status"], locs)
    files["netbox/racks.csv"] = _csv(
        ["site", "location", "name", "status", "u_height", "width", "comments"],
        [(site.name, f"{r.hall}-{r.row}", r.name, "active", r.size_u, 19,
          f"{r.power_kw:g} kW {r.cooling}") for r in plan.racks])
    racks = {r.name: r for r in plan.racks}
    devices: list[tuple[Any, ...]] = []
    for n in plan.nodes:
        nt = cat.nodes[n.type]
        devices.append((n.name, f"{n.role}-node", nt.vendor, nt.model, site.name,
                        _loc(racks, n.rack), n.rack, n.u, "front", "planned"))
    for s in plan.switches:
        st = cat.switches[s.model]
        role = "ib-switch" if st.technology == "infiniband" else "eth-switch"
        devices.append((s.name, role, st.vendor, st.model, site.name, _loc(racks, s.rack),
                        s.rack, s.u, "front", "planned"))
    for ap in plan.appliances:
        at = cat.appliances[ap.model]
        devices.append((ap.name, at.role, at.vendor, at.model, site.name, _loc(racks, ap.rack),
                        ap.rack, ap.u, "front", "planned"))
    for rack, pdu in pdus:  # a vertical (0U) PDU is in its rack without a position
        pt = cat.pdus[pdu.model]
        devices.append((pdu.name, "pdu", pt.vendor, pt.model, site.name, _loc(racks, rack),
                        rack, "", "", "planned"))
    files["netbox/devices.csv"] = _csv(
        ["name", "role", "manufacturer", "device_type", "site", "location", "rack",
         "position", "face", "status"], devices)
    ifaces: dict[tuple[str, str], str] = {}
    cables = _cable_rows(plan, ifaces)
    for a in plan.addresses:
        ifaces.setdefault((a.device, a.interface), "1000base-t" if a.pool in (
            "oob", "switch_mgmt") else "other")
    files["netbox/interfaces.csv"] = _csv(
        ["device", "name", "type", "mgmt_only"],
        [(d, i, t, "true" if i in ("bmc", "mgmt0") else "false")
         for (d, i), t in ifaces.items()])
    files["netbox/cables.csv"] = _csv(
        ["side_a_device", "side_a_type", "side_a_name", "side_b_device", "side_b_type",
         "side_b_name", "type", "status", "label", "length", "length_unit"], cables)
    del cables
    ips = _ip_rows(plan)
    files["netbox/prefixes.csv"] = _csv(
        ["prefix", "status", "description"],
        [(s.cidr, "active", f"{site.name} {s.pool} {s.name}") for s in plan.subnets])
    files["netbox/ip-addresses.csv"] = _csv(
        ["address", "status", "device", "interface", "is_primary", "dns_name"], ips)
    return files


def _cable_rows(plan: Plan, ifaces: dict[tuple[str, str], str]) -> list[tuple[str, ...]]:
    """cables.csv rows, entering both ends of each cable in ``ifaces`` (the first type of an
    interface stays). One NetBox cable per link (the CSV import takes one termination per
    side); its label is the physical cable's, so both links of a twin-port DAC carry the
    same label. Each record's fields are read in one call and the few interface types,
    cable types and lengths are formatted once each: half a million rows at 131k GPUs."""
    itypes: dict[str, dict[str, str]] = {}
    lengths: dict[float, str] = {}
    setdefault = ifaces.setdefault
    rows: list[tuple[str, ...]] = []
    for a, a_port, b, b_port, medium, cable, length, fabric, sku in map(_CABLE_FIELDS,
                                                                         plan.cables):
        by_sku = itypes.get(fabric)
        if by_sku is None:
            by_sku = itypes[fabric] = {}
        itype = by_sku.get(sku)
        if itype is None:
            itype = by_sku[sku] = _iface_type(plan, fabric, sku)
        setdefault((a, a_port), itype)
        setdefault((b, b_port), itype)
        text = lengths.get(length)
        if text is None:
            text = lengths[length] = f"{length:g}"
        rows.append((a, "dcim.interface", a_port, b, "dcim.interface", b_port,
                     CABLE_TYPES.get(medium, ""), "planned", cable, text, "m"))
    return rows


_CABLE_FIELDS = attrgetter("a", "a_port", "b", "b_port", "medium", "cable", "length_m",
                           "fabric", "sku")


def _ip_rows(plan: Plan) -> list[tuple[str, ...]]:
    """ip-addresses.csv rows: the boot interface's in-band and switch management
    addresses are primary, named after the device; the others after device and interface."""
    domain = plan.site.site.domain
    boot_ifaces = ("mgmt0",) + tuple(g.boot_interface for g in plan.site.node_groups)
    rows: list[tuple[str, ...]] = []
    for pool, device, interface, address, prefix in map(_IP_FIELDS, plan.addresses):
        if pool in ("switch_mgmt", "inband") and interface in boot_ifaces:
            rows.append((f"{address}/{prefix}", "active", device, interface, "true",
                         f"{device}.{domain}"))
        else:
            rows.append((f"{address}/{prefix}", "active", device, interface, "false",
                         f"{device}-{interface}.{domain}"))
    return rows


_IP_FIELDS = attrgetter("pool", "device", "interface", "address", "prefix")


def _loc(racks: dict[str, Any], rack: str) -> str:
    r = racks[rack]
    return f"{r.hall}-{r.row}"


def _devtype(vendor: str, model: str, key: str, u: int) -> str:
    return (f"manufacturer: {json.dumps(vendor)}\nmodel: {json.dumps(model)}\n"
            f"slug: {json.dumps(slug(key))}\nu_height: {u}\nis_full_depth: true\n")
