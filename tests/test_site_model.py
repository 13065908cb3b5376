"""Site model: every field documented, example sites clean, broken corpus gets exact codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ValidationError

from provision.cli.main import cli
from provision.loader import load_catalog, load_site
from provision.models.catalog import Catalog
from provision.models.site import Site
from tests.conftest import EXAMPLE_SITES, ROOT, SITES

BROKEN = sorted((ROOT / "tests/corpus/broken").glob("*.yaml"))
BROKEN = [p for p in BROKEN if not p.name.endswith("-catalog.yaml")]  # catalogs the cases use


def _models(ann: Any) -> list[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for a in getattr(ann, "__args__", ()) for m in _models(a)]


def _walk(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    missing = []
    for name, field in model.model_fields.items():
        if not (field.description or "").strip():
            missing.append(f"{model.__name__}.{name}")
        for sub in _models(field.annotation):
            missing += _walk(sub, seen)
    return missing


def test_every_model_field_has_a_description() -> None:
    seen: set[type[BaseModel]] = set()
    missing = _walk(Site, seen) + _walk(Catalog, seen)
    assert len(seen) >= 15, "walk did not reach the nested models"
    assert missing == []


def test_models_forbid_unknown_keys_and_are_frozen() -> None:
    site = load_site(SITES / "lab").site
    with pytest.raises(ValidationError):
        site.site.name = "other"  # type: ignore[misc]
    assert Site.model_config.get("extra") == "forbid"


def test_builtin_catalog_has_required_skus() -> None:
    cat = load_catalog()
    for node in ("dgx-h100", "dgx-h200", "dgx-b200", "pcie-a100-1hca", "gb200-nvl72"):
        assert node in cat.nodes
    assert len(cat.nodes["dgx-h100"].compute_hcas) == 8
    assert cat.nodes["dgx-b200"].max_power_kw == 14.3 and cat.nodes["dgx-b200"].rack_units == 10
    assert len(cat.nodes["pcie-a100-1hca"].compute_hcas) == 1
    storage = cat.nodes["storage-2u-nvme"]  # a node without GPUs names no GPU facts
    assert (storage.gpus, storage.gpu_model, storage.gpu_generation, storage.form_factor,
            storage.compute_hcas) == (0, None, None, None, [])
    assert storage.rack_units == 2 and storage.storage_nics == 2
    qm = cat.switches["qm9700"]
    assert (qm.ports, qm.cages, qm.ports_per_cage) == (64, 32, 2)
    assert cat.switches["qm8700"].ports == 40
    assert cat.switches["sn5600"].technology == "ethernet"
    assert all(c.lengths_m == sorted(c.lengths_m) for c in cat.cables.values())


def test_user_catalog_extends_builtin(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text("nodes: []\nswitches:\n  - {name: qm8700, vendor: X, model: override, "
                     "technology: infiniband, ports: 40, cages: 40, ports_per_cage: 1, "
                     "speed_gbps: 200, ib_speed: HDR, max_power_kw: 0.9, "
                     "typical_power_kw: 0.4, rack_units: 1}\n")
    cat = load_catalog([extra])
    assert cat.switches["qm8700"].model == "override"
    assert "qm9700" in cat.switches


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_example_sites_lint_clean(runner: CliRunner, site: str) -> None:
    res = runner.invoke(cli, ["lint", str(SITES / site)])
    assert res.exit_code == 0, res.output


def test_at_least_thirty_broken_cases() -> None:
    assert len(BROKEN) >= 30
    codes = {p.read_text().split()[2] for p in BROKEN}
    assert len(codes) >= 25  # each a different mistake, most a different rule


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_site_gets_intended_code_and_line(runner: CliRunner, path: Path) -> None:
    m = re.match(r"# expect: (GPU\d+) exit (\d) line (\d+)(?: file (\S+))?\n", path.read_text())
    assert m, f"{path.name} lacks an expect header"
    code, status, line = m.group(1), int(m.group(2)), int(m.group(3))
    in_file = m.group(4) or path.name
    res = runner.invoke(cli, ["lint", str(path), "--format", "json"])
    assert "Traceback" not in res.output
    assert res.exit_code == status, res.output
    findings = json.loads(res.stdout)
    assert {f["code"] for f in findings} == {code}, findings
    assert any(f["line"] == line and Path(f["file"]).name == in_file for f in findings), findings


def test_lint_text_format_is_one_line_per_finding(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["lint", str(ROOT / "tests/corpus/broken/rack-over-budget.yaml")])
    assert res.exit_code == 1
    lines = [ln for ln in res.stdout.splitlines() if ln]
    assert len(lines) == 1
    assert re.match(r".*rack-over-budget\.yaml:23:\d+: GPU101 rack a01 .* \(fix: .*\)$", lines[0])


def test_unreadable_site_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(cli, ["lint", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "no such site file" in res.output


def test_plan_refuses_broken_site_with_one_line(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["plan", str(ROOT / "tests/corpus/broken/unknown-node-type.yaml"),
                              "-o", "/nonexistent/never-written"])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "GPU124" in res.output


def test_schema_reference_lists_nested_keys(runner: CliRunner) -> None:
    res = runner.invoke(cli, ["schema"])
    assert res.exit_code == 0
    assert "halls[].rows[].rack.power_kw" in res.output
    assert "fabrics.compute.topology" in res.output
