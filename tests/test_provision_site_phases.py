"""The site-wide phases of `gpuctl provision site`: platform (Pulumi) and burnin (per rack)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.burnin.judge import Verdict
from provision.burnin.report import RunReport
from provision.burnin.session import host_outcomes
from provision.cli.main import cli
from provision.errors import ExecutionError
from provision.execute import phases, steps
from provision.execute.access import resolve
from provision.execute.display import QuietReporter
from provision.execute.phases import available
from provision.execute.store import open_store
from provision.plan.load import load_and_plan
from tests.conftest import SITES


def test_site_phases_are_available() -> None:
    assert {"platform", "burnin"} <= set(available())


def test_burnin_report_maps_node_verdicts_to_host_outcomes() -> None:
    report = RunReport("lab", "a01", "quick", "default", 7, ["a", "b", "c"], [
        Verdict("b", "gpu-count", "fail", "7 of 8 GPUs"),
        Verdict("b", "xid", "fail", "Xid 79 on GPU 3"),
        Verdict("c", "nvlink", "warn", "one link slow")])
    out = host_outcomes(report, ["a", "b", "c", "d"])
    assert out["a"].status == "ok" and "run 7" in out["a"].detail
    assert out["b"].status == "failed"
    assert out["b"].detail == "burn-in failed: 7 of 8 GPUs; Xid 79 on GPU 3"
    assert out["c"].status == "ok" and "warn" in out["c"].detail
    assert out["d"].status == "failed" and "not in the burn-in report" in out["d"].detail


def _burnin_runner(tmp_path: Path, rack_run: phases.BurninRack
                   ) -> tuple[phases.Runner, phases.RunOptions]:
    _, plan = load_and_plan(SITES / "lab")
    t = resolve(plan)
    runner = phases.Runner(targets=t, store=open_store(tmp_path / "p.db"),
                           reporter=QuietReporter(), executor=steps.SerialExecutor(),
                           client=lambda h, s: None)  # type: ignore[arg-type,return-value]
    return runner, phases.RunOptions(phases=["burnin"], hosts=[h.name for h in t.hosts],
                                     plan_version="v1", inventory=Path("/nonexistent"),
                                     plan=plan, site_path=SITES / "lab", burnin=rack_run)


def test_burnin_phase_runs_the_rack_burnin_passed_in(tmp_path: Path) -> None:
    calls: list[tuple[str, list[str], str]] = []

    def rack_run(rack: str, hosts: Sequence[str], level: str,
                 cancel: threading.Event) -> dict[str, steps.Outcome]:
        calls.append((rack, list(hosts), level))
        assert not cancel.is_set()
        return {h: steps.Outcome("failed" if h == "lab-gpu-02" else "ok", "burn-in x")
                for h in hosts if h != "lab-gpu-04"}

    runner, opts = _burnin_runner(tmp_path, rack_run)
    report = runner.run(opts)
    assert calls == [("a01", [f"lab-gpu-0{i}" for i in range(1, 5)], "standard")]
    assert report.failed_hosts() == ["lab-gpu-02", "lab-gpu-04"]
    assert report.results[("burnin", "lab-gpu-04")].detail == "not in the burn-in report"
    assert report.results[("burnin", "lab-gpu-01")].status == "ok"


def test_burnin_phase_errors_fail_the_rack_and_a_cancel_interrupts_the_run(
        tmp_path: Path) -> None:
    def broken(rack: str, hosts: Sequence[str], level: str,
               cancel: threading.Event) -> dict[str, steps.Outcome]:
        raise ExecutionError("ssh to lab-gpu-01: unreachable")

    runner, opts = _burnin_runner(tmp_path, broken)
    report = runner.run(opts)
    assert {o.detail for o in report.results.values()} == {
        "burn-in failed: ssh to lab-gpu-01: unreachable"}

    def stopped(rack: str, hosts: Sequence[str], level: str,
                cancel: threading.Event) -> dict[str, steps.Outcome]:
        cancel.set()  # SIGTERM while the burn-in ran: it stops and says so
        raise ExecutionError("burn-in run 1 of rack a01 cancelled")

    runner, opts = _burnin_runner(tmp_path / "b", stopped)
    with pytest.raises(phases.Interrupted):
        runner.run(opts)
    assert [r.status for r in runner.store.runs()] == ["interrupted"]


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
