"""Golden files of the lab site's artifacts, and locality: a small change to a site changes
only the lines that belong to it.

Update the goldens after an intended change: GPUCTL_UPDATE_GOLDEN=1 pytest tests/test_render_golden.py
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from provision.render.artifacts import render_artifacts
from tests.conftest import UPDATE_GOLDEN as UPDATE
from tests.render_support import ROOT, SITES, plan_of_text, site_plan

GOLDEN = ROOT / "tests" / "golden" / "sites" / "lab"


def test_lab_artifacts_match_golden() -> None:
    files = render_artifacts(site_plan("lab"))
    if UPDATE:
        for old in sorted(GOLDEN.rglob("*"), reverse=True):
            if old.is_file():
                old.unlink()
            elif not any(old.iterdir()):
                old.rmdir()
        for rel, text in files.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text, encoding="utf-8")
    have = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    assert have == set(files), "golden file set differs; GPUCTL_UPDATE_GOLDEN=1 to update"
    for rel, text in files.items():
        want = (GOLDEN / rel).read_text(encoding="utf-8")
        if want != text:
            diff = "\n".join(difflib.unified_diff(want.splitlines(), text.splitlines(),
                                                  f"golden/{rel}", rel, lineterm="", n=1))
            pytest.fail(f"{rel} differs from its golden (GPUCTL_UPDATE_GOLDEN=1 to update):\n"
                        + diff[:3000])


def test_rendering_is_deterministic() -> None:
    from provision.render.artifacts import render_artifacts as again

    plan = site_plan("lab")
    assert render_artifacts(plan) == again(plan)


def _changes(a: dict[str, str], b: dict[str, str]) -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for rel in sorted(set(a) | set(b)):
        if a.get(rel) == b.get(rel):
            continue
        old, new = (a.get(rel) or "").splitlines(), (b.get(rel) or "").splitlines()
        removed: list[str] = []
        added: list[str] = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new,
                                                           autojunk=False).get_opcodes():
            if tag != "equal":
                removed += old[i1:i2]
                added += new[j1:j2]
        out[rel] = (removed, added)
    return out


def _site_text(site: str) -> str:
    return (SITES / site / "site.yaml").read_text(encoding="utf-8")


def test_moving_one_node_changes_only_its_lines(tmp_path: Path) -> None:
    text = _site_text("lab")
    moved = text.replace("u_positions: [2, 8, 14, 20]", "u_positions: [2, 8, 14, 26]")
    assert moved != text
    plan_a, plan_b = plan_of_text(tmp_path / "a", text), plan_of_text(tmp_path / "b", moved)
    before, after = render_artifacts(plan_a), render_artifacts(plan_b)
    changes = _changes(before, after)
    assert changes, "the U position must show up somewhere"
    assert "ansible/host_vars/lab-gpu-04.yml" in changes and "netbox/devices.csv" in changes
    # Addresses are keyed by U: the node's own addresses move with it, nobody else's.
    old_ips = {a.address for a in plan_a.addresses_of("lab-gpu-04")}
    new_ips = {a.address for a in plan_b.addresses_of("lab-gpu-04")}
    assert old_ips.isdisjoint(new_ips)
    for rel, (removed, added) in changes.items():
        if rel == "ansible/host_vars/lab-gpu-04.yml":  # the node's own file
            assert "gpuctl_rack_u: 20" in removed and "gpuctl_rack_u: 26" in added
            assert all(ln == "gpuctl_rack_u: 20" or any(ip in ln for ip in old_ips)
                       for ln in removed), removed
            assert all(ln == "gpuctl_rack_u: 26" or any(ip in ln for ip in new_ips)
                       for ln in added), added
            continue
        for line in removed + added:
            assert "lab-gpu-04" in line or _BOOKKEEPING.search(line), \
                f"{rel}: unrelated line changed: {line!r}"


def test_rack_budget_changes_only_the_rack_line(tmp_path: Path) -> None:
    text = _site_text("lab")
    bigger = text.replace("power_kw: 36,", "power_kw: 40,")
    assert bigger != text
    changes = _changes(render_artifacts(plan_of_text(tmp_path / "a", text)),
                       render_artifacts(plan_of_text(tmp_path / "b", bigger)))
    assert set(changes) == {"netbox/racks.csv"}
    removed, added = changes["netbox/racks.csv"]
    assert len(removed) == len(added) == 1 and added[0].startswith("lab,h1-a,a01,")


_BOOKKEEPING = re.compile(
    r"^\s*\d+ ; serial$"            # a zone's serial follows its records
    r"|^# .*\d+ (nodes|switches)"  # header counts
    r"|^(SwitchName|BlockName)=\S+ Nodes=")  # Slurm host lists grow at the end


def test_adding_a_node_at_the_end_only_adds_lines(tmp_path: Path) -> None:
    text = _site_text("superpod-h100-4su")
    assert "count: 127" in text
    before = render_artifacts(plan_of_text(tmp_path / "a", text.replace("count: 127",
                                                                        "count: 126")))
    after = render_artifacts(plan_of_text(tmp_path / "b", text))
    changes = _changes(before, after)
    assert set(after) - set(before) == {"ansible/host_vars/dgx-127.yml"}
    assert set(before) <= set(after)
    for rel, (removed, added) in changes.items():
        for line in removed:
            grown = line + ","
            assert _BOOKKEEPING.search(line) or grown in added, \
                f"{rel}: an existing line changed: {line!r}"
        assert len(added) <= 60, f"{rel}: {len(added)} lines added for one node"
    for rel in ("ansible/inventory.yml", "dhcp/kea-dhcp4.conf", "ibsim/fabric.net",
                "netbox/devices.csv", "netbox/cables.csv", "k8s/node-labels.yaml",
                "opensm/node-name-map", "dns/spod.example.internal.zone"):
        assert any("dgx-127" in ln for ln in changes[rel][1]), rel
