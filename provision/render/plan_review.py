"""What a reviewer reads first when a plan changes: the devices, addresses and cables that
were added, removed, moved or renumbered between the plan on disk and the plan now.

Pure: it compares two renders of ``plan.json`` (devices with rack and U), ``addresses.csv``
and ``cabling.csv`` (cables by link ID with their two ends) given as text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

REVIEWED = frozenset({"plan.json", "addresses.csv", "cabling.csv"})
"""The generated files the review reads."""

EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the review: what changed, how many, and the first examples."""

    what: str
    count: int
    examples: tuple[str, ...]


def _devices(text: str) -> dict[str, tuple[str, int]]:
    """Device name -> (rack, U) of every node, switch and appliance in a plan.json."""
    if not text:
        return {}
    data = json.loads(text)
    out: dict[str, tuple[str, int]] = {}
    for table in ("nodes", "switches", "appliances"):
        t = data.get(table) or {}
        cols = t.get("columns") or []
        if not {"name", "rack", "u"} <= set(cols):
            continue
        i, r, u = cols.index("name"), cols.index("rack"), cols.index("u")
        for row in t.get("rows") or []:
            out[row[i]] = (row[r], row[u])
    return out


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text))) if text else []


def _addresses(text: str) -> dict[tuple[str, str, str], str]:
    """(device, pool, interface) -> address of every addresses.csv row."""
    return {(r["device"], r["pool"], r["interface"]): r["address"] for r in _rows(text)}


def _cables(text: str) -> dict[str, tuple[str, str, str, str, str]]:
    """Link ID -> (a device, a port, b device, b port, status) of every cabling.csv row."""
    return {r["link_id"]: (r["a_device"], r["a_port"], r["b_device"], r["b_port"],
                           r.get("status") or "built") for r in _rows(text)}


def _compare(old: Mapping[Any, Any], new: Mapping[Any, Any], noun: str,
             name: Callable[[Any], str], show: Callable[[Any], str],
             moved: str = "moved") -> list[Change]:
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k in new if k in old and old[k] != new[k]]

    def first(keys: list[Any], fmt: Callable[[Any], str]) -> tuple[str, ...]:
        return tuple(fmt(k) for k in sorted(keys)[:EXAMPLES])

    return [
        Change(f"{noun} added", len(added), first(added, lambda k: f"{name(k)} {show(new[k])}")),
        Change(f"{noun} removed", len(removed),
               first(removed, lambda k: f"{name(k)} {show(old[k])}")),
        Change(f"{noun} {moved}", len(changed),
               first(changed, lambda k: f"{name(k)} {show(old[k])} -> {show(new[k])}")),
    ]


def review(old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    """Changes from the ``old`` render to the ``new`` one (relative path -> text; a file
    absent from ``old`` counts as empty: everything in it is added)."""
    def pair(rel: str) -> tuple[str, str]:
        return old.get(rel, ""), new.get(rel, "")

    changes: list[Change] = []
    a, b = pair("plan.json")
    changes += _compare(_devices(a), _devices(b) if b != a else _devices(a), "devices",
                        str, lambda v: f"({v[0]} U{v[1]})" if v[0] else "(unplaced)")
    a, b = pair("addresses.csv")
    old_ip = _addresses(a)
    changes += _compare(old_ip, _addresses(b) if b != a else old_ip, "addresses",
                        lambda k: f"{k[0]} {k[1]}/{k[2]}", str, moved="changed")
    a, b = pair("cabling.csv")
    old_c = _cables(a)
    new_c = _cables(b) if b != a else old_c
    ends_old = {k: v[:4] for k, v in old_c.items()}
    ends_new = {k: v[:4] for k, v in new_c.items()}
    changes += _compare(ends_old, ends_new, "cables", str, lambda v: f"to {v[2]}:{v[3]}")
    installed = [k for k, v in new_c.items()
                 if k in old_c and old_c[k][4] == "future" and v[4] == "built"]
    changes.append(Change("future cables now built", len(installed),
                          tuple(sorted(installed)[:EXAMPLES])))
    return changes


def review_lines(changes: list[Change]) -> list[str]:
    """The review as aligned text lines (every category, zeros too: a reviewer wants to see
    that nothing was renumbered as much as what was)."""
    width = max(len(c.what) for c in changes)
    lines = []
    for c in changes:
        more = f", ... (+{c.count - len(c.examples)})" if c.count > len(c.examples) else ""
        ex = f"  {', '.join(c.examples)}{more}" if c.examples else ""
        lines.append(f"  {c.what:<{width}} {c.count:>7,}{ex}")
    return lines


def _record(line: str) -> tuple[str, Any] | None:
    """``"site": {...},`` (one plan.json record a line) -> (key, value); None otherwise."""
    try:
        doc = json.loads("{" + line.rstrip().rstrip(",") + "}")
    except ValueError:
        return None
    return next(iter(doc.items())) if isinstance(doc, dict) and len(doc) == 1 else None


def _leaves(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _leaves(v, f"{path}.{k}", out)
    else:
        out[path] = value
    return out


def _shown(value: Any, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[:width - 3] + "..."


def record_diff_lines(lines: list[str]) -> list[str]:
    """Unified diff lines of plan.json with each record that changed (a ``-`` and a ``+``
    line of one key) shown as the keys that differ: ``~site.site.pue_target: 1.3 -> 1.25``,
    not two lines of the whole record. ``lines`` are :class:`~provision.render.files.Drift`
    lines (``differs: PATH`` before each file's diff); other files' lines pass through."""
    out: list[str] = []
    i = 0
    in_plan = False
    while i < len(lines):
        if lines[i].startswith("differs: "):
            in_plan = lines[i].endswith("/plan.json")
        j = i
        while in_plan and j < len(lines) and lines[j][:1] in "-+" \
                and not lines[j].startswith(("---", "+++")):
            j += 1
        if j == i:
            out.append(lines[i])
            i += 1
            continue
        block = lines[i:j]
        old = {r[0]: r[1] for ln in block if ln[0] == "-" and (r := _record(ln[1:]))}
        new = {r[0]: r[1] for ln in block if ln[0] == "+" and (r := _record(ln[1:]))}
        both = old.keys() & new.keys()
        for ln in block:
            r = _record(ln[1:])
            if r is None or r[0] not in both:
                out.append(ln)
            elif ln[0] == "-":
                a, b = _leaves(old[r[0]], r[0], {}), _leaves(new[r[0]], r[0], {})
                for path in sorted(a.keys() | b.keys()):
                    if path not in b:
                        out.append(f"~{path}: {_shown(a[path])} -> (removed)")
                    elif path not in a:
                        out.append(f"~{path}: (added) -> {_shown(b[path])}")
                    elif a[path] != b[path]:
                        out.append(f"~{path}: {_shown(a[path])} -> {_shown(b[path])}")
        i = j
    return out
