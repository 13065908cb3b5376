"""Plan -> the planning artifacts: plan.json, CSVs for delivery crews, SVG pictures.

Pure: returns ``{relative path: text}``; the CLI writes them. Output is deterministic (no
timestamps, stable order) so ``gpuctl plan --check`` and code review of generated files work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import operator
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from provision.plan.build import Plan, summary
from provision.render.csvtext import csv_text as _csv
from provision.render.files import Buffer

ROWS_PER_PIECE = 8192
"""Rows of a plan.json table dumped at a time (about 1 MB of text)."""


def _record_parts(items: Iterable[Any]) -> list[Buffer]:
    """A table: ``{"columns": [...], "rows": [[...], ...]}``, one row per line, as encoded
    pieces to write one after the other.

    At 131,072 GPUs the links, cables and addresses tables are 40-70 MB each: dumped whole,
    every copy of one (the dump, the line breaks, the encoding, a join) was as many fresh
    pages for the kernel to fault in. Dumped :data:`ROWS_PER_PIECE` rows at a time, the
    copies are small and their memory is reused, and only the encoded pieces stay.
    Records are flat dataclasses; a row per line keeps the file compact and diff-friendly.
    """
    items = list(items)
    if not items:
        return [b'{"columns": [], "rows": []}']
    names = [f.name for f in dataclasses.fields(items[0])]
    getter = operator.attrgetter(*names)
    pieces: list[Buffer] = [f'{{"columns": {json.dumps(names)}, "rows": [\n'.encode()]
    for start in range(0, len(items), ROWS_PER_PIECE):
        batch = items[start:start + ROWS_PER_PIECE]
        if start:
            pieces.append(b",\n")
        pieces.append(_rows_lines(list(map(getter, batch)) if len(names) > 1
                                  else [(getter(x),) for x in batch]))
    pieces.append(b"\n]}")
    return pieces


def _rows_lines(rows: list[tuple[Any, ...]]) -> Buffer:
    """``rows`` as JSON arrays, one a line, separated by commas (no brackets around)."""
    fast = _formatted_rows(rows)
    if fast is not None:
        return fast.encode()
    text = json.dumps(rows, separators=(",", ":"))
    if text.count("],[") != len(rows) - 1:  # some string holds '],[': encode row by row
        return ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows).encode()
    return memoryview(text.encode().replace(b"],[", b"],\n["))[1:-1]


def _formatted_rows(rows: list[tuple[Any, ...]]) -> str | None:
    """What :func:`_rows_lines` writes, by one ``%`` format per row; None where it cannot.

    Where every column holds only strings JSON writes as they are (printable ASCII, no quote
    or backslash) or only numbers (ints, finite floats: ``%r`` is the repr JSON writes; None
    is written ``null`` beforehand), one format per row is faster than ``json``, which
    escapes and wraps each string in a new object: the cables table at 131,072 GPUs (20
    columns, 476,546 rows) 2.1 -> 1.4 s. Any other column (bools, nested values, other
    strings) leaves the rows to ``json``.
    """
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True))
    if not columns:
        return None
    specs = []
    for i, column in enumerate(columns):
        kinds = set(map(type, column))
        if kinds == {str}:
            text = "".join(column)
            if not (text.isascii() and text.isprintable()) or '"' in text or "\\" in text:
                return None
            specs.append('"%s"')
            continue
        numbers = kinds - {type(None)}
        if not numbers <= {int, float} or (
                float in numbers
                and not math.isfinite(sum(v for v in column if v is not None))):  # NaN, inf
            return None
        if numbers == kinds:
            specs.append("%r")
        else:
            columns[i] = tuple("null" if v is None else repr(v) for v in column)
            specs.append("%s")
    if any(spec == "%s" for spec in specs):
        rows = list(zip(*columns, strict=True))
    return ",\n".join(map(("[" + ",".join(specs) + "]").__mod__, rows))


def _fields(record: object) -> dict[str, Any]:
    """A dataclass record as JSON sees it (what ``dataclasses.asdict`` gives, without its
    deep copy of every nested record: the power plan has one per rack, PDU and outlet)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    raise TypeError(f"{type(record).__name__} is not JSON serializable")


def plan_json_parts(plan: Plan) -> list[Buffer]:
    """:func:`plan_json` encoded (UTF-8; the text is ASCII), as pieces to write or hash one
    after the other: at 131,072 GPUs the file is 166 MB, and joining it, then encoding it,
    would copy it twice more."""
    sections: list[tuple[str, list[Buffer]]] = [
        ("schema_version", [str(plan.schema_version).encode()]),
        ("site", [json.dumps(plan.site.model_dump(mode="json"), sort_keys=True).encode()]),
        ("summary", [json.dumps(summary(plan), sort_keys=True).encode()]),
        ("racks", _record_parts(plan.racks)),
        ("nodes", _record_parts(plan.nodes)),
        ("switches", _record_parts(sorted(plan.switches, key=lambda s: (s.fabric, s.name)))),
        ("appliances", _record_parts(plan.appliances)),
        ("links", _record_parts(lk for f in plan.fabrics.values() for lk in f.links)),
        ("cables", _record_parts(plan.cables)),
        ("subnets", _record_parts(plan.subnets)),
        ("addresses", _record_parts(plan.addresses)),
        ("power", [json.dumps(plan.power, default=_fields, sort_keys=True).encode()]),
        ("bom", _record_parts(plan.bom)),
    ]
    pieces: list[Buffer] = [b"{\n"]
    for i, (key, parts) in enumerate(sections):
        pieces.append(((",\n" if i else "") + f'"{key}": ').encode())
        pieces.extend(parts)
    pieces.append(b"\n}\n")
    return pieces


def plan_json(plan: Plan) -> str:
    """The whole plan as versioned JSON (schema_version bumps on incompatible changes)."""
    return b"".join(plan_json_parts(plan)).decode()


def plan_version(plan: Plan) -> str:
    """Short hash of :func:`plan_json`: runs of the same plan share it (``--resume`` and the
    results store key on it)."""
    digest = hashlib.sha256()
    for piece in plan_json_parts(plan):
        digest.update(piece)
    return digest.hexdigest()[:16]


def cabling_csv(plan: Plan) -> str:
    """One row per link. ``cable_label`` is the physical cable a crew pulls and labels: the
    two links of a twin-port DAC share it; each fiber leg is its own. ``a_cage``/``b_cage``
    are the ports as printed (``17/1`` = cage 17 lane 1, ``OSFP4P2`` on a DGX); ``a_optic``/
    ``b_optic`` name the module in that cage (one module per cage, shared by its links).
    ``status`` is ``future`` for the links of a fabric's design capacity that reach a switch
    not installed yet (listed after the built ones)."""
    # Each record's fields are read in one attrgetter call and each distinct length and
    # run is formatted once: half a million rows at 131k GPUs, a few thousand values.
    order = operator.attrgetter("fabric", "a_rack", "id")
    fields = operator.attrgetter("id", "cable", "fabric", "kind", "a", "a_port", "a_cage",
                                 "a_rack", "b", "b_port", "b_cage", "b_rack", "medium", "sku",
                                 "length_m", "run_m", "a_optic", "b_optic")
    lengths: dict[float, str] = {}
    runs: dict[float, str] = {}
    rows: list[tuple[str, ...]] = []
    for cables, status in ((plan.cables, "built"), (plan.future_cables, "future")):
        for (lid, label, fabric, kind, a, a_port, a_cage, a_rack, b, b_port, b_cage, b_rack,
             medium, sku, length, run, a_optic, b_optic) in map(fields, sorted(cables,
                                                                              key=order)):
            length_text = lengths.get(length)
            if length_text is None:
                length_text = lengths[length] = f"{length:g}"
            run_text = runs.get(run)
            if run_text is None:
                run_text = runs[run] = f"{run:.2f}"
            rows.append((lid, label, fabric, kind, a, a_port, a_cage, a_rack, b, b_port,
                         b_cage, b_rack, medium, sku, length_text, run_text, a_optic,
                         b_optic, status))
    return _csv(["link_id", "cable_label", "fabric", "kind", "a_device", "a_port", "a_cage",
                 "a_rack", "b_device", "b_port", "b_cage", "b_rack", "medium", "sku",
                 "length_m", "run_m", "a_optic", "b_optic", "status"], rows)


def addresses_csv(plan: Plan) -> str:
    return _csv(["pool", "device", "interface", "address", "prefix", "subnet", "gateway"],
                ((a.pool, a.device, a.interface, a.address, a.prefix, a.subnet, a.gateway)
                 for a in plan.addresses))


def bom_csv(plan: Plan) -> str:
    """``quantity`` counts things to order (physical cables, optic modules); ``links_carried``
    the logical links (cables) or ports (optics) they carry. ``future ...`` lines are what a
    fabric's design capacity adds later (switches not installed yet and their cables)."""
    return _csv(["category", "sku", "description", "quantity", "links_carried"],
                ((b.category, b.sku, b.description, b.quantity, b.links or "")
                 for b in plan.bom))


def power_csv(plan: Plan) -> str:
    """Per rack: its budget, nameplate and expected draw, and power as delivered: the PDU
    model and count (alternately on feeds A and B), what one feed delivers alone (N+N: at
    least the nameplate), C13/C19 outlets used of those available, and the worst 3-phase
    imbalance of its PDUs; then rows, halls, the site and the facility."""
    p = plan.power
    feeds = {f.rack: f for f in p.feeds}
    rows: list[Sequence[Any]] = []
    for r in p.racks:
        f = feeds.get(r.rack)
        if f is None:
            continue
        rows.append(("rack", r.rack, r.budget_kw, r.nameplate_kw, r.expected_kw, r.headroom_kw,
                     r.cooling, r.cooling_limit_kw, f.model, len(f.pdus), f.one_feed_kw,
                     f"{f.c13[0]}/{f.c13[1]}", f"{f.c19[0]}/{f.c19[1]}",
                     f.phase_imbalance_pct))
    rows += [(u.level, u.name, u.capacity_kw, u.nameplate_kw, u.expected_kw,
              round(u.capacity_kw - u.nameplate_kw, 3), "", "", "", "", "", "", "", "")
             for u in p.rollups]
    rows.append(("facility", plan.site.site.name, plan.site.site.power_capacity_mw * 1000,
                 p.facility_kw, round(p.it_expected_kw * p.pue, 3), "", f"pue={p.pue:g}",
                 f"annual_mwh={p.annual_mwh:g};annual_cost={p.annual_cost:g} {p.currency}",
                 "", "", "", "", "", ""))
    return _csv(["level", "name", "capacity_kw", "nameplate_kw", "expected_kw", "headroom_kw",
                 "cooling", "cooling_limit_kw", "pdu", "pdus", "one_feed_kw", "c13_used",
                 "c19_used", "phase_imbalance_pct"], rows)


PLAN_FILES = ("plan.json", "cabling.csv", "addresses.csv", "bom.csv", "power.csv", "pictures")
"""Families of planning artifacts; each is one file of that name except ``pictures``:
``fabric.svg``, ``floor/<hall>.svg``, ``racks/<hall>-<row>.svg`` and ``plan.html``."""


def render_plan_files(plan: Plan, only: Collection[str] | None = None) -> dict[str, str]:
    """Every planning artifact of the site (or the families in ``only``), by relative path."""
    from provision.render.pictures import render_pictures

    makers: dict[str, Callable[[Plan], str]] = {
        "plan.json": plan_json, "cabling.csv": cabling_csv, "addresses.csv": addresses_csv,
        "bom.csv": bom_csv, "power.csv": power_csv,
    }
    unknown = set(only or ()) - set(PLAN_FILES)
    if unknown:
        raise ValueError(f"unknown plan files {sorted(unknown)}; known: {PLAN_FILES}")
    files: dict[str, str] = {}
    for name in PLAN_FILES:
        if only is not None and name not in only:
            continue
        if name == "pictures":
            files.update(render_pictures(plan))
        else:
            files[name] = makers[name](plan)
    return files
