"""Whole burn-in runs of the lab site's rack, on the in-process hardware simulator (no root):
verdicts, levels, resume after a kill, the store record and the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provision.burnin import session
from provision.burnin.report import RunReport
from provision.burnin.session import BurninOptions, run_burnin
from provision.burnin.store import open_burnin_store, record_fabric_verify
from provision.burnin.targets import rack_targets
from provision.cli.main import cli
from provision.errors import ExecutionError
from provision.execute.remote import Collector, CommandResult
from provision.lab.hwsim import default_personality
from provision.lab.hwsim.local import LocalSim
from provision.lab.simexec import InProcessSimExecutor
from provision.loader import LoadedSite
from provision.plan.build import Plan
from provision.plan.load import load_and_plan

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "inventory" / "sites" / "lab"
NODES = [f"lab-gpu-0{i}" for i in range(1, 5)]


@pytest.fixture(scope="module")
def planned() -> tuple[LoadedSite, Plan]:
    return load_and_plan(SITE)


@pytest.fixture
def sim(tmp_path: Path) -> LocalSim:
    return LocalSim.create(tmp_path / "sim", [
        default_personality(n, "NVIDIA A100-SXM4-80GB", hca_rate_gbps=200) for n in NODES])


def executor(sim: LocalSim, plan: Plan) -> InProcessSimExecutor:
    return InProcessSimExecutor(sim, {t.name: t.address for t in rack_targets(plan, "a01")})


def run(planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp: Path, level: str = "standard",
        **kw: Any) -> tuple[RunReport, InProcessSimExecutor]:
    ex = kw.pop("ex", None) or executor(sim, planned[1])
    opts = BurninOptions(rack="a01", level=level, skip_fabric=True,
                         store=str(tmp / "burnin.db"), report_dir=tmp / "reports", soak_s=0,
                         **kw)
    return run_burnin(*planned, opts, executor=ex), ex


def faults(sim: LocalSim) -> None:
    sim.fault("lab-gpu-01", "gpu-missing", gpu=3)
    sim.fault("lab-gpu-01", "xid", gpu=3, xid=79)
    sim.fault("lab-gpu-02", "hca-200g", hca=2)
    sim.fault("lab-gpu-03", "slow-nccl", percent=50)


def test_standard_run_names_the_faulty_nodes_rails_and_reasons(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path) -> None:
    faults(sim)
    report, ex = run(planned, sim, tmp_path)
    assert not report.ok and report.failed_nodes() == NODES[:3]
    by = {s.node: s for s in report.summaries()}
    assert by["lab-gpu-04"].status == "warn"  # inconclusive rack collective only
    assert by["lab-gpu-02"].failed_rails == ("mlx5_2",)
    assert by["lab-gpu-01"].failed_rails == () == by["lab-gpu-03"].failed_rails
    text = {n: " | ".join(v.reason for v in s.failures) for n, s in by.items()}
    assert "7 of 8 GPUs visible" in text["lab-gpu-01"] and "Xid 79" in text["lab-gpu-01"]
    assert "95." in text["lab-gpu-02"] and "< 180" in text["lab-gpu-02"]
    assert "cable to ib-leaf001 port 11" in text["lab-gpu-02"]
    assert "< 210 floor" in text["lab-gpu-03"]
    assert report.collectives[0].members == tuple(NODES[1:])  # lab-gpu-01 kept out
    mpirun = next(argv for _, argv in ex.calls if argv[0] == "mpirun")  # no hostfile left
    assert mpirun[mpirun.index("--host") + 1] == ",".join(f"{n}:8" for n in NODES[1:])
    assert not any(a.endswith(".hosts") for _, argv in ex.calls for a in argv)
    bw_calls = [argv for _, argv in ex.calls if "ib_write_bw" in argv and "--version" not in argv]
    assert len(bw_calls) == 2 * 8 * 6  # server + client, 8 rails, 6 pairs (3 rounds of 2)
    lines = report.to_json()
    assert lines["nodes"][0]["status"] == "fail" and lines["ok"] is False
    with open_burnin_store(tmp_path / "burnin.db") as st:
        states = st.node_states("lab")
        assert states["lab-gpu-02"].state == "failed" and "mlx5_2" in states["lab-gpu-02"].reason
        assert [s.state for s in st.node_history("lab", "lab-gpu-04")] == \
            ["new", "burn-in", "passed"]
        assert st.versions(report.run_id)["lab-gpu-04"]["perftest"] == "6.22"
        stored = st.verdicts(report.run_id)
        assert stored == report.verdicts
        outs = st.outputs(report.run_id)
        assert outs["node/lab-gpu-01/xid"].stdout.count("Xid") >= 1
        assert st.burnin_runs("lab")[0].status == "failed"


def test_clean_rack_passes_and_accept_moves_to_production(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    report, _ = run(planned, sim, tmp_path)
    assert report.ok and report.failed_nodes() == []
    # rack, then the leaf with more than one node (lab-gpu-04 alone on ib-leaf002)
    assert [(c.label, c.ok) for c in report.collectives] == [("rack-a01", True),
                                                             ("leaf-ib-leaf001", True)]
    ex = executor(sim, planned[1])
    monkeypatch.setattr(session, "_executor", lambda *a: ex)
    result = CliRunner().invoke(cli, ["burnin", "run", str(SITE), "--rack", "a01", "--no-lab",
                                      "--skip-fabric", "--store", str(tmp_path / "burnin.db"),
                                      "--level", "quick", "--accept"])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout and "cordon" not in result.stdout
    hist = CliRunner().invoke(cli, ["burnin", "history", str(SITE), "--store",
                                    str(tmp_path / "burnin.db"), "--format", "json"])
    data = json.loads(hist.stdout)
    assert {n["state"] for n in data["nodes"]} == {"production"}
    assert [r["level"] for r in data["runs"]] == ["quick", "standard"]


def test_store_override_serves_run_accept_and_history(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # $GPUCTL_BURNIN_STORE is the DB of the run, of its --accept (the production states)
    # and of history, as --store would be.
    db = tmp_path / "env.db"
    monkeypatch.setenv("GPUCTL_BURNIN_STORE", str(db))
    ex = executor(sim, planned[1])
    monkeypatch.setattr(session, "_executor", lambda *a: ex)
    result = CliRunner().invoke(cli, ["burnin", "run", str(SITE), "--rack", "a01", "--no-lab",
                                      "--skip-fabric", "--level", "quick", "--accept"])
    assert result.exit_code == 0, result.output
    with open_burnin_store(db) as st:
        assert {s.state for s in st.node_states("lab").values()} == {"production"}
    hist = CliRunner().invoke(cli, ["burnin", "history", str(SITE), "--format", "json"])
    data = json.loads(hist.stdout)
    assert {n["state"] for n in data["nodes"]} == {"production"}
    assert [r["level"] for r in data["runs"]] == ["quick"]


def test_a_bad_rail_is_isolated_from_the_rack_collective(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path) -> None:
    sim.fault("lab-gpu-02", "hca-200g", hca=2)
    report, _ = run(planned, sim, tmp_path)
    iso = report.isolations["rack-a01"]
    assert iso.bad == iso.confirmed == ("lab-gpu-02",) and not iso.suspects
    assert iso.good == ("lab-gpu-01", "lab-gpu-03", "lab-gpu-04") and iso.rounds == 3
    assert report.failed_nodes() == ["lab-gpu-02"]
    rack = next(v for v in report.verdicts if v.test == "nccl-rack" and v.failed)
    assert rack.node == "lab-gpu-02" and rack.rail == "mlx5_2"
    assert "isolated to this node by bisection (3 rounds" in rack.reason
    assert "confirmed with a known-good partner" in rack.reason
    labels = [c.label for c in report.collectives]
    assert labels[0] == "rack-a01"
    assert all(x.startswith("iso-rack-a01-") for x in labels[1:1 + iso.tests])
    assert labels[1 + iso.tests:] == ["leaf-ib-leaf001"]  # the good nodes of that leaf


def test_pairs_with_a_down_port_are_not_run_and_blamed_on_it(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path) -> None:
    sim.fault("lab-gpu-04", "hca-down", hca=5)
    report, ex = run(planned, sim, tmp_path)
    assert not [a for n, a in ex.calls if "mlx5_5" in a and "lab-gpu-04" in (n, *a)]
    s = next(x for x in report.summaries() if x.node == "lab-gpu-04")
    assert s.status == "fail" and s.failed_rails == ("mlx5_5",)
    bw = next(v for v in s.failures if v.test == "ib-write-bw")
    assert "not run: mlx5_5 of lab-gpu-04 is down" in bw.reason
    assert "(either end" not in bw.reason
    assert {v.test for v in s.failures} >= {"ib-port", "ib-write-bw", "ib-write-lat"}
    assert report.failed_nodes() == ["lab-gpu-04"]
    # one rail short drags the rack collective below its floor: isolated, rail named
    rack = next(v for v in s.failures if v.test == "nccl-rack")
    assert rack.rail == "mlx5_5" and "confirmed" in rack.reason


class Unreachable(InProcessSimExecutor):
    """lab-gpu-03 does not answer SSH."""

    def run(self, node: str, argv: Sequence[str], *, timeout: float) -> CommandResult:
        if node == "lab-gpu-03":
            raise ExecutionError("ssh to lab-gpu-03 (10.210.0.13): unreachable (timed out)")
        return super().run(node, argv, timeout=timeout)

    def start(self, node: str, argv: Sequence[str], *, timeout: float) -> Collector:
        if node == "lab-gpu-03":
            raise ExecutionError("ssh to lab-gpu-03 (10.210.0.13): unreachable (timed out)")
        return super().start(node, argv, timeout=timeout)


def test_an_unreachable_node_fails_alone_and_the_run_completes(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path) -> None:
    ex = Unreachable(sim, {t.name: t.address for t in rack_targets(planned[1], "a01")})
    report, _ = run(planned, sim, tmp_path, ex=ex)
    assert report.failed_nodes() == ["lab-gpu-03"]
    s = next(x for x in report.summaries() if x.node == "lab-gpu-03")
    assert "unreachable" in s.failures[0].reason
    assert report.collectives[0].members == ("lab-gpu-01", "lab-gpu-02", "lab-gpu-04")
    assert report.collectives[0].ok


def test_cli_failure_prints_table_fixes_and_dry_run_drain(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    faults(sim)
    monkeypatch.setattr(session, "_executor", lambda *a: executor(sim, planned[1]))
    result = CliRunner().invoke(cli, ["burnin", "run", str(SITE), "--rack", "a01", "--no-lab",
                                      "--skip-fabric", "--store", str(tmp_path / "b.db"),
                                      "--report-dir", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "FAIL" in out and "kubectl drain lab-gpu-02" in out
    assert 'scontrol update NodeName=lab-gpu-03 State=DRAIN' in out
    assert "kubectl cordon lab-gpu-04" not in out
    assert sorted(p.suffix for p in (tmp_path / "r").iterdir()) == [".html", ".json", ".xml"]
    hist = CliRunner().invoke(cli, ["burnin", "history", str(SITE), "--store",
                                    str(tmp_path / "b.db")])
    assert "failed" in hist.stdout and "lab-gpu-01, lab-gpu-02, lab-gpu-03" in hist.stdout


def test_levels(planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path) -> None:
    quick, ex = run(planned, sim, tmp_path / "q", level="quick")
    tools = {argv[0] for _, argv in ex.calls}
    assert tools == {"nvidia-smi", "dmesg", "ibstat"} and quick.ok
    full, ex = run(planned, sim, tmp_path / "f", level="full")
    tests = {v.test for v in full.verdicts}
    assert {"dcgm-r3", "a2a-single", "nccl-a2a"} <= tests and "dcgm-r2" not in tests
    assert any("cross-rack NCCL skipped" in n for n in full.notes)
    soak, _ = run(planned, sim, tmp_path / "s", level="soak")
    assert soak.ok and {v.reason.split(":")[0] for v in soak.verdicts} == \
        {"soak pass 1", "soak pass 2"}
    with open_burnin_store(tmp_path / "s" / "burnin.db") as st:
        assert {u.split("/")[0] for u in st.outputs(soak.run_id)} == {"soak000", "soak001"}


class Degrading(InProcessSimExecutor):
    """lab-gpu-03 throttles (80% busbw) once the second soak pass starts."""

    def run(self, node: str, argv: Sequence[str], *, timeout: float) -> CommandResult:
        if node == "lab-gpu-03" and argv[0] == "all_reduce_perf":
            self.passes = getattr(self, "passes", 0) + 1
            if self.passes == 2:
                self.sim.fault("lab-gpu-03", "slow-nccl", percent=80)
        return super().run(node, argv, timeout=timeout)


def test_soak_judges_the_trend(planned: tuple[LoadedSite, Plan], sim: LocalSim,
                               tmp_path: Path) -> None:
    ex = Degrading(sim, {t.name: t.address for t in rack_targets(planned[1], "a01")})
    soak, _ = run(planned, sim, tmp_path, level="soak", ex=ex)
    trend = [v for v in soak.verdicts if v.test == "soak-trend"]
    assert [(v.node, v.failed) for v in trend] == [("lab-gpu-03", True)]
    assert "over 2 passes" in trend[0].reason and not soak.ok


class Killer(InProcessSimExecutor):
    """Dies (like Ctrl-C) after ``limit`` commands."""

    limit = 10_000

    def run(self, node: str, argv: Sequence[str], *, timeout: float) -> CommandResult:
        if len(self.calls) >= self.limit:
            raise KeyboardInterrupt
        return super().run(node, argv, timeout=timeout)


def test_resume_continues_an_interrupted_run(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path) -> None:
    faults(sim)
    addresses = {t.name: t.address for t in rack_targets(planned[1], "a01")}
    killer = Killer(sim, addresses)
    killer.limit = 40
    with pytest.raises(KeyboardInterrupt):
        run(planned, sim, tmp_path, ex=killer)
    with open_burnin_store(tmp_path / "burnin.db") as st:
        first = st.burnin_runs("lab")[0]
        assert first.status == "interrupted"
        kept = st.outputs(first.id)
        assert 20 <= len(kept) <= 40
    resumed, ex = run(planned, sim, tmp_path, resume=True)
    fresh, ex_fresh = run(planned, sim, tmp_path / "fresh")
    assert len(ex.calls) < len(ex_fresh.calls)
    assert not {u for u in kept} & {f"node/{n}/{a[0]}" for n, a in ex.calls}
    assert resumed.failed_nodes() == fresh.failed_nodes() == NODES[:3]
    with open_burnin_store(tmp_path / "burnin.db") as st:
        runs = st.burnin_runs("lab")
        assert runs[0].options["resumed_from"] == first.id and runs[0].status == "failed"


def test_fabric_verify_hook_records_into_the_store(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUCTL_BURNIN_STORE", str(tmp_path / "f.db"))
    where = record_fabric_verify("lab", {"site": "lab", "ok": False, "findings": [1]})
    assert where == str(tmp_path / "f.db")
    record_fabric_verify("lab", json.dumps({"ok": True}))
    monkeypatch.delenv("GPUCTL_BURNIN_STORE")
    monkeypatch.chdir(tmp_path)
    assert "not recorded" in record_fabric_verify("nosuchsite", {"ok": True})
    with open_burnin_store(tmp_path / "f.db") as st:
        assert [ok for _, ok, _ in st.fabric_results("lab")] == [False, True]
        with pytest.raises(ValueError, match="must be one of"):
            st.set_state("lab", "x", "broken")


def test_fabric_verify_hook_uses_the_given_site_directory(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A site outside inventory/sites/ records into its own SITE/.gpuctl/provision.db, and a
    # site of the same name under the current directory is not touched.
    monkeypatch.delenv("GPUCTL_BURNIN_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    mine, other = tmp_path / "elsewhere" / "lab", tmp_path / "inventory" / "sites" / "lab"
    for d in (mine, other):
        (d / ".gpuctl").mkdir(parents=True)
        open_burnin_store(d / ".gpuctl" / "provision.db").close()
    assert record_fabric_verify("lab", {"ok": True}, mine) == str(mine / ".gpuctl/provision.db")
    with open_burnin_store(mine / ".gpuctl/provision.db") as st:
        assert [ok for _, ok, _ in st.fabric_results("lab")] == [True]
    with open_burnin_store(other / ".gpuctl/provision.db") as st:
        assert st.fabric_results("lab") == []
    bare = tmp_path / "bare"
    assert record_fabric_verify("lab", {"ok": True}, bare) == (
        f"no results DB {bare}/.gpuctl/provision.db (a provision or burn-in run makes it): "
        "not recorded")


def test_backends_print_jobs_instead_of_running() -> None:
    slurm = CliRunner().invoke(cli, ["burnin", "run", str(SITE), "--rack", "a01",
                                     "--backend", "slurm"])
    assert slurm.exit_code == 0, slurm.output
    assert slurm.stdout.count("#!/bin/bash") == 2  # rack + ib-leaf001 (3 nodes)
    assert "#SBATCH --nodelist=lab-gpu-01,lab-gpu-02,lab-gpu-03,lab-gpu-04" in slurm.stdout
    assert "srun --mpi=pmix all_reduce_perf -b 256M -e 8G" in slurm.stdout
    k8s = CliRunner().invoke(cli, ["burnin", "run", str(SITE), "--rack", "a01",
                                   "--backend", "kubernetes"])
    assert k8s.exit_code == 0, k8s.output
    assert "kind: MPIJob" in k8s.stdout
    bad = CliRunner().invoke(cli, ["burnin", "run", str(SITE), "--rack", "z99"])
    assert bad.exit_code == 2 and "racks: a01" in bad.output


def test_burnin_checks_host_keys_against_the_seeded_known_hosts(
        planned: tuple[LoadedSite, Plan], sim: LocalSim, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # `gpuctl image seed` wrote SITE/.gpuctl/known_hosts: burn-in (alone, or as provision's
    # burnin phase) verifies the nodes' pre-generated host keys there, as provision does;
    # an access file's or --known-hosts' own file still wins.
    from provision.execute.access import Access

    site = tmp_path / "lab"
    (site / ".gpuctl").mkdir(parents=True)
    (site / "site.yaml").write_text((SITE / "site.yaml").read_text())
    seeded = site / ".gpuctl" / "known_hosts"
    seeded.write_text("")
    targets = rack_targets(planned[1], "a01")
    assert {t.known_hosts for t in session.ssh_targets(targets, Access(), seeded).values()} \
        == {seeded}
    mine = tmp_path / "mine"
    own = Access().with_ssh(known_hosts=mine)
    assert {t.known_hosts for t in session.ssh_targets(targets, own, seeded).values()} \
        == {mine.absolute()}
    seen: list[Any] = []
    ex = executor(sim, planned[1])
    monkeypatch.setattr(session, "_executor", lambda *a: seen.append(a) or ex)
    result = CliRunner().invoke(cli, ["burnin", "run", str(site), "--rack", "a01", "--no-lab",
                                      "--skip-fabric", "--level", "quick"])
    assert result.exit_code == 0, result.output
    assert seen[0][3] == seeded
