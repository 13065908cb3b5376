"""`gpuctl lint` output contract, `gpuctl schema catalog` and `gpuctl catalog`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from provision.cli.main import cli
from provision.loader import CATALOG_KINDS, load_catalog
from tests.conftest import ROOT, SITES

BROKEN = ROOT / "tests/corpus/broken"


def _site_copy(tmp_path: Path, site: str, edit: tuple[str, str]) -> Path:
    text = (SITES / site / "site.yaml").read_text()
    assert edit[0] in text
    path = tmp_path / "site.yaml"
    path.write_text(text.replace(edit[0], edit[1]))
    return path


def test_repeated_findings_are_one_line_with_a_count(runner: CliRunner, tmp_path: Path) -> None:
    # Two rows of 16 H100 racks at 4 x 10.2 kW, each rack budgeted 20 kW: 32 racks over.
    path = _site_copy(tmp_path, "superpod-h100-4su", ("power_kw: 46, cooling: hybrid",
                                                      "power_kw: 20, cooling: hybrid"))
    res = runner.invoke(cli, ["lint", str(path)])
    assert res.exit_code == 1
    over = [ln for ln in res.stdout.splitlines() if " GPU101 " in ln]
    assert len(over) == 2, res.stdout  # one per row spec line, not one per rack
    assert re.search(r"site\.yaml:17:\d+: GPU101 rack a01 draws [\d.]+ kW nameplate, over its "
                     r"20 kW budget \(and 15 more like it: a02, a03, a04, \.\.\.\) \(fix: ", over[0])
    data = json.loads(runner.invoke(cli, ["lint", str(path), "--format", "json"]).stdout)
    row_a = next(f for f in data if f["code"] == "GPU101" and f["line"] == 17)
    assert row_a["count"] == 16 and row_a["examples"][:3] == ["a01", "a02", "a03"]


def test_warnings_pass_unless_strict(runner: CliRunner) -> None:
    path = BROKEN / "pue-implausible-for-climate.yaml"
    res = runner.invoke(cli, ["lint", str(path)])
    assert res.exit_code == 0
    assert re.match(r".*:11:3: GPU109 warning: PUE target 1\.02 is below what a temperate "
                    r"site reaches", res.stdout)
    assert runner.invoke(cli, ["lint", str(path), "--strict"]).exit_code == 1
    data = json.loads(runner.invoke(cli, ["lint", str(path), "--format", "json"]).stdout)
    assert [(f["code"], f["severity"]) for f in data] == [("GPU109", "warning")]
    # plan goes ahead on a site whose only findings are warnings
    assert runner.invoke(cli, ["plan", str(path), "-o", "/nonexistent/x", "--check"]) \
        .output.count("GPU109") == 0


def test_psus_on_one_feed_below_max_power_is_a_warning_with_its_consequence(
        runner: CliRunner, tmp_path: Path) -> None:
    # DGX H100: 6 x 3.3 kW PSUs, 3 per feed = 9.9 kW < 10.2 kW max (GPU110)
    res = runner.invoke(cli, ["lint", str(SITES / "superpod-h100-4su")])
    assert res.exit_code == 0, res.output
    assert re.search(r"site\.yaml:23:5: GPU110 warning: node group dgx \(dgx-h100\): on a "
                     r"feed loss its 3 of 6 PSUs on the other feed deliver 9\.9 kW of its "
                     r"10\.2 kW maximum, so every node runs power-capped", res.stdout)
    # PSUs rated so that half of them carry the maximum: no finding
    cat = tmp_path / "psu-catalog.yaml"
    node = next(n for n in yaml.safe_load((ROOT / "provision/catalog/nodes.yaml").read_text())
                ["nodes"] if n["name"] == "dgx-h100")
    cat.write_text(yaml.safe_dump({"nodes": [{**node, "psu_kw": 3.4}]}))
    text = (SITES / "superpod-h100-4su" / "site.yaml").read_text()
    site = tmp_path / "site.yaml"
    site.write_text(f"catalogs: [{cat.name}]\n{text}")
    res = runner.invoke(cli, ["lint", str(site)])
    assert res.exit_code == 0 and "GPU110" not in res.output, res.output
    assert res.output.strip() == "ok: no findings", res.output


def test_unquoted_version_says_quote_it_with_what_was_written(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["lint", str(BROKEN / "version-unquoted-float.yaml")])
    assert res.exit_code == 1
    assert res.stdout.strip().endswith(
        'GPU005 software.kubernetes: YAML read 1.30 as the number 1.3, not text '
        '(fix: quote it: "1.30")')


def test_catalog_error_names_the_catalog_file_line(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["lint", str(BROKEN / "catalog-entry-bad-value.yaml")])
    assert res.exit_code == 1
    assert re.fullmatch(r"\S*broken/bad-value-catalog\.yaml:3:\d+: GPU002 switches\.test-ib\."
                        r"ports: .*got 'lots' \(fix: see `gpuctl schema catalog` .*\)\n",
                        res.stdout)


def test_typo_gets_a_did_you_mean(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["lint", str(BROKEN / "unknown-rack-key.yaml")])
    assert "unknown key 'power_kW' (fix: did you mean 'power_kw'?)" in res.stdout


def test_schema_documents_catalog_files(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["schema", "catalog"])
    assert res.exit_code == 0
    for key in ("nodes[].max_power_kw", "nodes[].compute_hcas[].speed", "switches[].ports",
                "cables[].lengths_m", "transceivers[].reach_m"):
        assert re.search(rf"^{re.escape(key)} +\S", res.stdout, re.M), key
    for kind in CATALOG_KINDS:  # sections other engineers add (pdus, ...) appear by themselves
        assert re.search(rf"^{kind} +", res.stdout, re.M), kind
    js = json.loads(runner.invoke(cli, ["schema", "catalog", "--format", "json"]).stdout)
    assert js["properties"]["switches"]["type"] == "array"


def test_schema_catalog_json_accepts_the_builtin_files(runner: CliRunner) -> None:
    """The documented file format is the one the built-in catalog files are written in."""
    from provision.cli.schema import catalog_file_model

    model = catalog_file_model()
    for path in sorted((ROOT / "provision/catalog").glob("*.yaml")):
        if path.name != "versions.yaml":
            model.model_validate(yaml.safe_load(path.read_text()))


def test_catalog_lists_every_sku_with_key_facts(runner: CliRunner) -> None:
    cat = load_catalog()
    res = runner.invoke(cli, ["catalog"])
    assert res.exit_code == 0
    for kind in CATALOG_KINDS:
        assert f"{kind} ({len(getattr(cat, kind))})" in res.stdout
    qm = next(ln for ln in res.stdout.splitlines() if ln.startswith("qm9700 "))
    assert qm.split()[-8:] == ["infiniband", "64x", "NDR", "32", "x2", "1.72", "1.1", "1"]
    h100 = next(ln for ln in res.stdout.splitlines() if ln.startswith("dgx-h100 "))
    assert "8x NVIDIA H100 80GB HBM3" in h100 and "8x NDR" in h100 and " 10.2 " in h100


def test_catalog_filter_and_json(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["catalog", "cables", "--format", "json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert {d["kind"] for d in data} == {"cables"}
    dac = next(d for d in data if d["name"] == "dac-ndr-osfp")
    assert dac["max_length_m"] == 3 and dac["medium"] == "dac"
    assert runner.invoke(cli, ["catalog", "routers"]).exit_code == 2
    assert "Examples:" in runner.invoke(cli, ["catalog", "--help"]).stdout


def test_catalog_includes_a_sites_own_skus(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["catalog", "switches", "--site",
                              str(BROKEN / "fabric-radix-too-small.yaml")])
    assert res.exit_code == 0
    assert re.search(r"^tiny-ib4 +4-port HDR +infiniband +4x HDR", res.stdout, re.M)
    bad = runner.invoke(cli, ["catalog", "--site", str(BROKEN / "catalog-non-finite.yaml")])
    assert bad.exit_code == 2 and "non-finite-catalog.yaml:3:" in bad.output


def test_one_node_too_many_for_the_sus_is_a_warning(runner: CliRunner, tmp_path: Path) -> None:
    """128 DGX in "4 SUs x 32 slots" (one slot is the UFM's) opens SU 5 for one node."""
    path = _site_copy(tmp_path, "superpod-h100-4su", ("    count: 127\n", "    count: 128\n"))
    path.write_text(path.read_text().replace("{name: b, racks: 16,", "{name: b, racks: 17,"))
    res = runner.invoke(cli, ["lint", str(path)])
    assert res.exit_code == 0, res.stdout
    (line,) = [ln for ln in res.stdout.splitlines() if " GPU140 " in ln]
    assert re.search(r"site\.yaml:24:\d+: GPU140 warning: compute fabric: 128 nodes open "
                     r"scalable unit 5 for 1 node\(s\) \(1 of its 32 slots\): 8 more leaves "
                     r"and spines 16 -> 32", line), line
    assert runner.invoke(cli, ["lint", str(path), "--strict"]).exit_code == 1
    out = tmp_path / "plan"
    res = runner.invoke(cli, ["plan", str(path), "-o", str(out), "--format", "json"])
    units = json.loads(res.stdout)["compute_fabric"]["scalable_units"]
    assert [(u["nodes"], u["slots"]) for u in units] == [(31, 31), (32, 32), (32, 32), (32, 32),
                                                          (1, 32)]
    clean = runner.invoke(cli, ["lint", str(SITES / "superpod-h100-4su")])
    assert "GPU140" not in clean.stdout


def test_nic_faster_than_its_tor_port_needs_a_chosen_mode(runner: CliRunner,
                                                          tmp_path: Path) -> None:
    """DGX B200's 200G in-band ports into 100G SN4600C ports: an error until the site says the
    ports run at 100G; then the cables are 100G ones."""
    text = (SITES / "lab" / "site.yaml").read_text()
    for old, new in (("    type: dgx-a100\n    count: 4\n", "    type: dgx-b200\n    count: 2\n"),
                     ("      nodes_per_rack: 4\n      u_positions: [2, 8, 14, 20]",
                      "      nodes_per_rack: 2\n      u_positions: [2, 12]"),
                     ("power_kw: 36, cooling: air}", "power_kw: 40, cooling: air}"),
                     ("    switch: qm8700\n    speed: HDR\n", "    switch: qm9700\n    speed: NDR\n")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "site.yaml"
    path.write_text(text)
    res = runner.invoke(cli, ["lint", str(path)])
    assert res.exit_code == 1
    assert re.search(r"GPU142 inband fabric: dgx-b200 has 200G inband ports but sn4600c ToR "
                     r"ports run 100G", res.stdout), res.stdout
    path.write_text(text.replace("  inband:\n    switch: sn4600c\n",
                                 "  inband:\n    switch: sn4600c\n    node_port_gbps: {gpu: 100}\n"))
    assert runner.invoke(cli, ["lint", str(path)]).exit_code == 0
    out = tmp_path / "plan"
    assert runner.invoke(cli, ["plan", str(path), "-o", str(out)]).exit_code == 0
    rows = [ln.split(",") for ln in (out / "cabling.csv").read_text().splitlines()[1:]]
    assert {r[13] for r in rows if r[2] == "inband" and r[3] == "node-tor"} == {"dac-100gbe"}
    path.write_text(text.replace("  inband:\n    switch: sn4600c\n",
                                 "  inband:\n    switch: sn4600c\n    node_port_gbps: 200\n"))
    res = runner.invoke(cli, ["lint", str(path)])
    assert res.exit_code == 1 and "node_port_gbps 200 is faster" in res.stdout


def test_a_core_pair_too_small_gives_its_one_fix(runner: CliRunner, tmp_path: Path) -> None:
    # The three-hall site of test_hall_core: a site core pair of 48-port switches has no
    # room for 16 uplinks from each of 12 aggregation switches; a hall core with 24 of its
    # 48 ports to the site core has none for a hall's third block.
    from tests.test_hall_core import _site
    for oob, fix in (({"core": "site", "core_uplinks": 16},
                      "set fabrics.oob.core: hall (a core pair per hall) or a larger "
                      "fabrics.oob.core_switch"),
                     ({"core_uplinks": 24}, "set a larger fabrics.oob.core_switch")):
        (tmp_path / "site.yaml").write_text(yaml.safe_dump(_site(**oob), sort_keys=False))
        res = runner.invoke(cli, ["lint", str(tmp_path)])
        assert res.exit_code == 1, res.output
        lines = res.stdout.splitlines()
        assert len(lines) == 1 and lines[0].count("(fix: ") == 1, res.stdout
        assert re.search(r"site\.yaml:\d+:\d+: GPU141 oob fabric: (hall )?core switch sn2201 "
                         r"has 48 ports.*, too few for aggregation switch oob-agg\d\d-\d "
                         r"\(block \d+\) \(fix: " + re.escape(fix) + r"\)$", lines[0]), lines[0]
        data = json.loads(runner.invoke(cli, ["lint", str(tmp_path), "--format", "json"]).stdout)
        assert [(f["code"], f["hint"]) for f in data] == [("GPU141", fix)]
        # plan names the same fix in its one-line error
        res = runner.invoke(cli, ["plan", str(tmp_path), "-o", str(tmp_path / "out")])
        assert res.exit_code != 0 and f"; {fix}" in res.output, res.output
