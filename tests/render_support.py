"""Helpers for the render tests: plan a site, write the artifacts, small format checkers."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from provision.plan.build import Plan
from provision.plan.load import load_and_plan
from provision.render.artifacts import render_artifacts

ROOT = Path(__file__).resolve().parents[1]
SITES = ROOT / "inventory" / "sites"


@cache
def site_plan(site: str) -> Plan:
    return load_and_plan(SITES / site)[1]


def plan_of_text(tmp: Path, text: str) -> Plan:
    """Plan a site given as site.yaml text (written to ``tmp``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "site.yaml").write_text(text, encoding="utf-8")
    return load_and_plan(tmp)[1]


def write(out: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return out


def render_site(site: str, out: Path) -> dict[str, str]:
    files = render_artifacts(site_plan(site))
    write(out, files)
    return files


_HOSTLIST = re.compile(r"([^,\[]*)(?:\[([^\]]*)\])?")


def expand_hostlist(text: str) -> list[str]:
    """Slurm bracket host list -> names (the subset gpuctl writes: prefix[a-b,c])."""
    out: list[str] = []
    i = 0
    while i < len(text):
        m = _HOSTLIST.match(text, i)
        assert m is not None and m.end() > i, f"bad host list {text!r} at {i}"
        prefix, body = m.group(1), m.group(2)
        if body is None:
            out.append(prefix)
        else:
            for part in body.split(","):
                lo, _, hi = part.partition("-")
                width = len(lo)
                for n in range(int(lo), int(hi or lo) + 1):
                    out.append(f"{prefix}{n:0{width}d}")
        i = m.end()
        if i < len(text):
            assert text[i] == ",", f"bad host list {text!r} at {i}"
            i += 1
    return out


def parse_slurm(text: str) -> list[dict[str, str]]:
    """topology.conf lines -> ``{key: value}`` records; comments and blanks skipped."""
    records = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        rec = {}
        for field in line.split():
            key, sep, value = field.partition("=")
            assert sep and value, f"not Key=Value: {field!r} in {line!r}"
            assert key not in rec, f"duplicate {key} in {line!r}"
            rec[key] = value
        records.append(rec)
    return records


def check_slurm_tree(text: str, nodes: set[str], roots: int = 1) -> None:
    """Every node under exactly one leaf switch; every switch reachable from one root (one
    per InfiniBand fabric: ``roots``)."""
    recs = parse_slurm(text)
    switches = {r["SwitchName"]: r for r in recs}
    assert len(switches) == len(recs), "every line defines one switch, names unique"
    seen: list[str] = []
    children: set[str] = set()
    for r in recs:
        assert set(r) <= {"SwitchName", "Nodes", "Switches", "LinkSpeed"}, r
        if "Nodes" in r:
            seen += expand_hostlist(r["Nodes"])
        for child in expand_hostlist(r.get("Switches", "")) if "Switches" in r else []:
            assert child in switches, f"{r['SwitchName']} references unknown switch {child}"
            assert child not in children, f"switch {child} has two parents"
            children.add(child)
    assert sorted(seen) == sorted(nodes), "leaf switches must hold every node exactly once"
    tops = set(switches) - children
    assert len(tops) == roots, f"{roots} root switch(es) expected, got {sorted(tops)}"


def check_slurm_block(text: str, nodes: set[str]) -> None:
    recs = parse_slurm(text)
    blocks = [r for r in recs if "BlockName" in r]
    sizes = [r for r in recs if "BlockSizes" in r]
    assert len(sizes) == 1 and len(blocks) + 1 == len(recs)
    seen = [n for b in blocks for n in expand_hostlist(b["Nodes"])]
    assert sorted(seen) == sorted(nodes)
    values = [int(v) for v in sizes[0]["BlockSizes"].split(",")]
    assert values == sorted(values) and values[0] == min(
        len(expand_hostlist(b["Nodes"])) for b in blocks)
