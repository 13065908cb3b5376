"""The site-wide phases of `gpuctl provision site`: platform (Pulumi) and burnin (per rack)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.execute.phases import _burnin_rack, available
from tests.conftest import SITES


def _printer(payload: object, rc: int = 0) -> list[str]:
    return [sys.executable, "-c",
            f"import sys; print({json.dumps(json.dumps(payload))}); sys.exit({rc})"]


def test_site_phases_are_available() -> None:
    assert {"platform", "burnin"} <= set(available())


def test_burnin_rack_maps_node_verdicts_to_host_outcomes() -> None:
    report = {"run": 7, "nodes": [
        {"node": "a", "status": "pass", "failures": []},
        {"node": "b", "status": "fail",
         "failures": [{"reason": "7 of 8 GPUs"}, {"reason": "Xid 79 on GPU 3"}]},
        {"node": "c", "status": "warn", "failures": []}]}
    out = _burnin_rack(_printer(report, rc=1), ["a", "b", "c", "d"])
    assert out["a"].status == "ok" and "run 7" in out["a"].detail
    assert out["b"].status == "failed"
    assert out["b"].detail == "burn-in failed: 7 of 8 GPUs; Xid 79 on GPU 3"
    assert out["c"].status == "ok" and "warn" in out["c"].detail
    assert out["d"].status == "failed" and "not in the burn-in report" in out["d"].detail


def test_burnin_rack_reports_a_crashed_run_with_its_last_error_line() -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('x\\ngpuctl: error: boom\\n');"
            "sys.exit(2)"]
    out = _burnin_rack(argv, ["a"])
    assert out["a"].status == "failed"
    assert out["a"].detail == "burn-in failed (exit 2): gpuctl: error: boom"


@pytest.fixture
def no_lab_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GPUCTL_BMC_USER", "admin")
    monkeypatch.setenv("GPUCTL_BMC_PASSWORD", "not-used")
    return tmp_path / "store.db"


def test_platform_phase_dry_run_lists_the_stack_without_the_cli(no_lab_env: Path) -> None:
    res = CliRunner().invoke(cli, ["provision", "site", str(SITES / "lab"), "--phases",
                                   "platform", "--no-lab", "--dry-run", "--store",
                                   f"sqlite:///{no_lab_env}"])
    assert res.exit_code == 0, res.output
    assert "would manage" in res.output and "resources" in res.output


@pytest.mark.skipif(shutil.which("pulumi") is not None, reason="the Pulumi CLI is installed")
def test_platform_phase_without_pulumi_cli_fails_with_one_line(no_lab_env: Path) -> None:
    res = CliRunner().invoke(cli, ["provision", "site", str(SITES / "lab"), "--phases",
                                   "platform", "--no-lab", "--store", f"sqlite:///{no_lab_env}"])
    assert res.exit_code == 2
    errors = [ln for ln in res.output.splitlines() if ln.startswith("gpuctl: error:")]
    assert errors == ["gpuctl: error: install the Pulumi CLI: curl -fsSL "
                      "https://get.pulumi.com | sh, or see https://www.pulumi.com/docs/install/"]
