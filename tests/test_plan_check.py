"""`gpuctl plan --check`: a reviewer's summary of devices, addresses and cables first, and
the number of differing files (not diff lines)."""

from __future__ import annotations

import filecmp
import re
from pathlib import Path

from click.testing import CliRunner

from provision.cli.main import cli
from tests.conftest import SITES


def _site(tmp: Path, name: str, text: str) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "site.yaml").write_text(text)
    return d


def _differing_files(a: Path, b: Path) -> int:
    """Files that differ between two plan directories, counted by walking both."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    names |= {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    names.discard(Path(".gpuctl-generated"))
    return sum(1 for n in names if not ((a / n).exists() and (b / n).exists()
                                        and filecmp.cmp(a / n, b / n, shallow=False)))


def _count(out: str, what: str) -> int:
    m = re.search(rf"^  {what} +([\d,]+)", out, re.M)
    assert m, (what, out[:2000])
    return int(m.group(1).replace(",", ""))


def test_check_reviews_an_added_node_and_counts_files(tmp_path: Path) -> None:
    text = (SITES / "superpod-h100-4su" / "site.yaml").read_text()
    assert "count: 127" in text
    runner = CliRunner()
    old_site = _site(tmp_path, "old", text.replace("count: 127", "count: 126"))
    new_site = _site(tmp_path, "new", text)
    out = tmp_path / "out"
    assert runner.invoke(cli, ["plan", str(old_site), "-o", str(out)]).exit_code == 0
    assert runner.invoke(cli, ["plan", str(new_site), "-o", str(tmp_path / "ref")]).exit_code == 0
    res = runner.invoke(cli, ["plan", str(new_site), "-o", str(out), "--check"])
    assert res.exit_code == 1
    assert res.stdout.startswith(f"review of {out} -> the plan now")
    assert re.search(r"^  devices added +1  dgx-127 \(b16 U33\)$", res.stdout, re.M), res.stdout
    for what in ("devices removed", "devices moved", "addresses removed", "addresses changed",
                 "cables removed", "cables moved"):
        assert _count(res.stdout, what) == 0, what
    assert _count(res.stdout, "addresses added") == 1 + 1 + 2 + 8  # BMC, boot, 2 storage, 8 IPoIB
    assert _count(res.stdout, "cables added") >= 8 + 2
    files = _differing_files(out, tmp_path / "ref")
    assert 1 < files < 60
    assert f"gpuctl: {files} generated file(s) in {out} differ" in res.stderr


def test_check_reviews_a_moved_node_with_its_addresses(tmp_path: Path) -> None:
    text = (SITES / "lab" / "site.yaml").read_text()
    moved = text.replace("u_positions: [2, 8, 14, 20]", "u_positions: [2, 8, 14, 26]")
    assert moved != text
    runner = CliRunner()
    out = tmp_path / "out"
    assert runner.invoke(cli, ["plan", str(_site(tmp_path, "a", text)), "-o", str(out)]) \
        .exit_code == 0
    res = runner.invoke(cli, ["plan", str(_site(tmp_path, "b", moved)), "-o", str(out),
                              "--check"])
    assert res.exit_code == 1
    assert re.search(r"^  devices moved +1  lab-gpu-04 \(a01 U20\) -> \(a01 U26\)$",
                     res.stdout, re.M), res.stdout
    # addresses are keyed by U: the node's BMC, boot and IPoIB addresses move, nothing else
    changed = re.search(r"^  addresses changed +(\d+)  (.*)$", res.stdout, re.M)
    assert changed and int(changed.group(1)) == 2 + 8, res.stdout
    assert all(ex.startswith("lab-gpu-04 ") for ex in changed.group(2).split(", ")[:3])
    assert _count(res.stdout, "devices added") == 0


def test_check_passes_on_an_unchanged_plan(tmp_path: Path) -> None:
    runner = CliRunner()
    site = _site(tmp_path, "lab", (SITES / "lab" / "site.yaml").read_text())
    out = tmp_path / "out"
    assert runner.invoke(cli, ["plan", str(site), "-o", str(out)]).exit_code == 0
    res = runner.invoke(cli, ["plan", str(site), "-o", str(out), "--check"])
    assert res.exit_code == 0 and "review" not in res.stdout
    assert re.match(r"ok: .* matches the plan \(\d+ files\)", res.stderr)


def test_check_shows_a_changed_site_setting_by_key(tmp_path: Path) -> None:
    text = (SITES / "lab" / "site.yaml").read_text()
    assert "pue_target: 1.3\n" in text
    runner = CliRunner()
    out = tmp_path / "out"
    assert runner.invoke(cli, ["plan", str(_site(tmp_path, "a", text)), "-o", str(out)]) \
        .exit_code == 0
    res = runner.invoke(cli, ["plan", str(_site(tmp_path, "b", text.replace(
        "pue_target: 1.3\n", "pue_target: 1.25\n"))), "-o", str(out), "--check"])
    assert res.exit_code == 1
    plan_json = res.stdout.split(f"differs: {out}/plan.json\n", 1)[1].split("differs: ", 1)[0]
    assert "~site.site.pue_target: 1.3 -> 1.25\n" in plan_json, plan_json
    assert "~power.pue: 1.3 -> 1.25\n" in plan_json
    # no whole record: every line of plan.json's diff is a header or one key's change
    assert all(ln.startswith(("---", "+++", "@@", "~")) and len(ln) < 200
               for ln in plan_json.splitlines()), plan_json
    # other files keep their line diff
    assert "\n-facility,lab," in res.stdout and "\n+facility,lab," in res.stdout
