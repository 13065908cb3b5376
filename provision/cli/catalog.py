"""``gpuctl catalog``: the hardware SKUs a site can name, with their key facts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from provision.loader import CATALOG_KINDS, load_catalog, load_site
from provision.models.catalog import Catalog

Facts = Callable[[dict[str, Any]], dict[str, str]]


def _kw(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else "-"


def _node(d: dict[str, Any]) -> dict[str, str]:
    hcas = d.get("compute_hcas") or []
    gpus = d.get("gpus") or 0
    mem = f" {d['gpu_memory_gib']}GB" if d.get("gpu_memory_gib") else ""
    if mem.strip() in str(d.get("gpu_model")):
        mem = ""  # "NVIDIA H100 80GB HBM3" already says it
    return {
        "model": str(d["model"]),
        "gpus": f"{gpus}x {d.get('gpu_model') or '?'}{mem}" if gpus else "-",
        "compute": f"{len(hcas)}x {hcas[0]['speed']}" if hcas else "-",
        "storage": f"{d['storage_nics']}x{d['storage_nic_gbps']}G" if d["storage_nics"] else "-",
        "inband": f"{d['inband_nics']}x{d['inband_nic_gbps']}G" if d["inband_nics"] else "-",
        "max kW": _kw(d["max_power_kw"]), "typ kW": _kw(d["typical_power_kw"]),
        "U": str(d["rack_units"]), "cooling": "liquid" if d.get("liquid_cooled") else "air",
        "PSUs": f"{d['psus']}x {d['psu_inlet']}",
    }


def _switch(d: dict[str, Any]) -> dict[str, str]:
    speed = d.get("ib_speed") or f"{d['speed_gbps']}G"
    return {
        "model": str(d["model"]), "technology": str(d["technology"]),
        "ports": f"{d['ports']}x {speed}",
        "cages": f"{d['cages']}" + (f" x{d['ports_per_cage']}" if d["ports_per_cage"] > 1 else ""),
        "max kW": _kw(d["max_power_kw"]), "typ kW": _kw(d["typical_power_kw"]),
        "U": str(d["rack_units"]),
    }


def _cable(d: dict[str, Any]) -> dict[str, str]:
    optics = " / ".join(o for o in (d.get("transceiver"), d.get("host_transceiver"),
                                     d.get("host_twin_transceiver")) if o)
    return {
        "medium": str(d["medium"]), "technology": str(d["technology"]),
        "ends": "straight" if d.get("legs", 1) == 1 else f"1:{d['legs']} splitter",
        "speed": f"{d['speed_gbps']}G", "reach m": _kw(d["max_length_m"]),
        "lengths m": ",".join(_kw(x) for x in d["lengths_m"]), "optics": optics or "-",
    }


def _transceiver(d: dict[str, Any]) -> dict[str, str]:
    return {
        "form factor": str(d["form_factor"]), "ports": f"{d['ports']}x {d['speed_gbps']}G",
        "reach m": _kw(d["reach_m"]), "fiber": {"mm": "multimode", "sm": "single-mode"}.get(
            str(d["fiber"]), str(d["fiber"])),
    }


def _pdu(d: dict[str, Any]) -> dict[str, str]:
    return {
        "model": str(d["model"]), "input": f"{d['phases']}-phase {d['voltage_v']} V "
        f"{_kw(d['current_a'])} A", "feed kW": _kw(d["feed_kw"]),
        "C13": str(d["outlets_c13"]), "C19": str(d["outlets_c19"]),
        "U": str(d["rack_units"]),
    }


def _generic(d: dict[str, Any]) -> dict[str, str]:
    """Every plain value of an entry, for sections without a chosen set of columns."""
    return {k: (_kw(v) if isinstance(v, float) else str(v)) for k, v in d.items()
            if k != "name" and isinstance(v, str | int | float | bool)}


FACTS: dict[str, Facts] = {"nodes": _node, "switches": _switch, "cables": _cable,
                           "transceivers": _transceiver, "pdus": _pdu}
"""Key facts shown per section; other sections (appliances) show every plain value."""


def rows(catalog: Catalog, kinds: list[str]) -> list[dict[str, Any]]:
    """One record per SKU: kind, name, key facts (text) and every value (json)."""
    out = []
    for kind in kinds:
        for name, entry in sorted(getattr(catalog, kind).items()):
            d = entry.model_dump(mode="json")
            out.append({"kind": kind, "name": name, "facts": FACTS.get(kind, _generic)(d),
                        "spec": d})
    return out


def _table(kind: str, recs: list[dict[str, Any]]) -> list[str]:
    cols = ["name"] + list(recs[0]["facts"])
    cells = [[r["name"]] + [r["facts"].get(c, "") for c in cols[1:]] for r in recs]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [f"{kind} ({len(recs)})", fmt.format(*cols).rstrip()] + \
        [fmt.format(*row).rstrip() for row in cells]


@click.command("catalog")
@click.argument("kind", required=False, type=click.Choice(list(CATALOG_KINDS)))
@click.option("--site", "site", type=click.Path(path_type=Path), default=None,
              help="Include SITE's own catalog files (its `catalogs:`), which add SKUs or "
              "replace built-in ones of the same name.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: a table per kind; json: every value of every SKU.")
def catalog(kind: str | None, site: Path | None, fmt: str) -> None:
    """Hardware SKUs a site can name (nodes, switches, cables, optics, ...) and their facts.

    KIND shows one section.

    \b
    A node group's `type:`, a fabric's `switch:`/`spine_switch:` and the cabling planner's
    cable and optic choices all name SKUs from this list. Add or replace SKUs in a catalog
    file listed under `catalogs:` in site.yaml (format: `gpuctl schema catalog`).
    \b
    Examples:
      gpuctl catalog                               every section
      gpuctl catalog switches                      radix, speed, power and height
      gpuctl catalog nodes --site inventory/sites/lab
      gpuctl catalog cables --format json | jq '.[] | select(.spec.medium == "dac")'
    """
    cat = load_site(site).catalog if site is not None else load_catalog()
    kinds = [kind] if kind else list(CATALOG_KINDS)
    recs = rows(cat, kinds)
    if fmt == "json":
        click.echo(json.dumps([{"kind": r["kind"], "name": r["name"], **r["spec"]}
                               for r in recs], indent=2, sort_keys=True))
        return
    blocks = []
    for k in kinds:
        these = [r for r in recs if r["kind"] == k]
        blocks.append("\n".join(_table(k, these)) if these else f"{k} (0)")
    click.echo("\n\n".join(blocks))
