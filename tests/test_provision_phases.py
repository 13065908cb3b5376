"""The phase loop with a real store and a fake playbook runner: resume, failed hosts drop
out, unavailable phases are skipped, cancellation is recorded as interrupted; and the offline
dry-run of the real playbooks against the lab site's rendered inventory."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.execute import ansible, events, phases, rundir, steps
from provision.execute.access import resolve
from provision.execute.display import QuietReporter
from provision.execute.events import HostTally
from provision.execute.inventory import inventory_text, select
from provision.execute.redfish import RedfishClient
from provision.execute.store import open_store
from provision.plan.load import load_and_plan

ROOT = Path(__file__).resolve().parents[1]
LAB_SITE = ROOT / "inventory" / "sites" / "lab"


class FakePlaybooks:
    """Stands in for ansible-runner: host ``bad`` fails, the rest change once then are ok."""

    def __init__(self, bad: set[str], cancel_on_call: Any = None) -> None:
        self.bad = bad
        self.calls: list[list[str]] = []
        self.cancel_on_call = cancel_on_call

    def __call__(self, req: ansible.PlaybookRequest, *, on_update: Any,
                 cancelled: Any) -> ansible.PlaybookResult:
        self.calls.append(list(req.limit))
        if self.cancel_on_call is not None:
            self.cancel_on_call.set()
            return ansible.PlaybookResult("canceled", 1, {}, {})
        stats = {h: {"ok": 5, "changed": 0 if len(self.calls) > 1 else 2,
                     "failed": 1 if h in self.bad else 0, "unreachable": 0, "skipped": 0}
                 for h in req.limit}
        tallies = {h: HostTally(failed=1, message="template error") for h in req.limit
                   if h in self.bad}
        on_update(tallies)
        return ansible.PlaybookResult("failed" if self.bad else "successful", 0, stats, tallies)


def no_client(h: Any, s: Any) -> RedfishClient:
    raise AssertionError("dry run must not talk to a BMC")


def make_runner(tmp_path: Path, fake: FakePlaybooks) -> tuple[phases.Runner, list[str]]:
    _, plan = load_and_plan(LAB_SITE)
    t = resolve(plan)
    store = open_store(tmp_path / "p.db")
    runner = phases.Runner(targets=t, store=store, reporter=QuietReporter(),
                           executor=steps.SerialExecutor(), client=no_client,
                           run_playbook=fake)
    return runner, select(t, None)


@functools.cache
def only_base_playbooks() -> Path:
    """A playbook dir with base.yml only: the kubernetes phase is then not available."""
    d = Path(tempfile.mkdtemp(prefix="gpuctl-playbooks-"))
    (d / "base.yml").write_text("---\n")
    return d


def opts(hosts: list[str], **kw: Any) -> phases.RunOptions:
    return phases.RunOptions(phases=kw.pop("phases", ["base", "kubernetes"]), hosts=hosts,
                             plan_version="v1", inventory=Path("/nonexistent"),
                             playbooks=kw.pop("playbooks", only_base_playbooks()), **kw)


def test_failed_host_is_recorded_and_resume_runs_only_it(tmp_path: Path) -> None:
    fake = FakePlaybooks(bad={"lab-gpu-02"})
    runner, hosts = make_runner(tmp_path, fake)
    first = runner.run(opts(hosts))
    assert first.status == "failed" and first.failed_hosts() == ["lab-gpu-02"]
    assert first.phase_status == {"base": "failed", "kubernetes": "skipped"}
    assert first.results[("base", "lab-gpu-02")].detail == "template error"
    assert any("kubernetes: not available yet" in line for line in runner.reporter.lines)  # type: ignore[attr-defined]
    fake.bad = set()
    second = runner.run(opts(hosts, resume=True))
    assert fake.calls[-1] == ["lab-gpu-02"]
    assert second.status == "ok"
    third = runner.run(opts(hosts, resume=True))
    assert third.phase_status["base"] == "skipped" and len(fake.calls) == 2
    statuses = [r.status for r in runner.store.runs(site="lab")]
    assert statuses == ["ok", "ok", "failed"]


def test_max_fail_percent_stops_before_the_next_phase(tmp_path: Path) -> None:
    runner, hosts = make_runner(tmp_path, FakePlaybooks(bad={"lab-gpu-01", "lab-gpu-02"}))
    report = runner.run(opts(hosts, phases=["base", "nvidia"], max_fail_percent=25))
    assert "nvidia" not in report.phase_status


def test_dry_run_lists_redfish_actions_and_is_not_a_success_for_resume(tmp_path: Path) -> None:
    fake = FakePlaybooks(bad=set())
    runner, hosts = make_runner(tmp_path, fake)
    report = runner.run(opts(hosts, phases=["image", "base"], dry_run=True))
    image = report.results[("image", "lab-gpu-01")]
    assert image.status == "skipped" and "Pxe, Once" in image.detail
    assert "ComputerSystem.Reset" in image.detail
    assert runner.store.succeeded("provision", "lab", "v1", phases=phases.PHASES) == set()


def test_cancel_marks_the_run_interrupted(tmp_path: Path) -> None:
    runner, hosts = make_runner(tmp_path, FakePlaybooks(bad=set()))
    runner.run_playbook = FakePlaybooks(bad=set(), cancel_on_call=runner.cancel)
    with pytest.raises(phases.Interrupted, match="--resume"):
        runner.run(opts(hosts))
    [run] = runner.store.runs(site="lab")
    assert run.status == "interrupted"
    assert runner.store.phases(run.id) == [("base", "interrupted", "")]


def test_parse_phases() -> None:
    assert phases.parse_phases("base,preflight") == ["preflight", "base"]
    assert phases.parse_phases("all") == list(phases.PHASES)
    with pytest.raises(Exception, match="unknown phase 'bogus'"):
        phases.parse_phases("base,bogus")


def test_limit_by_rack_group_and_names() -> None:
    _, plan = load_and_plan(LAB_SITE)
    t = resolve(plan)
    assert select(t, "rack=a01") == [f"lab-gpu-0{i}" for i in range(1, 5)]
    assert select(t, "lab-gpu-03,lab-gpu-01") == ["lab-gpu-01", "lab-gpu-03"]
    with pytest.raises(Exception, match="no rack 'zz'"):
        select(t, "rack=zz")
    with pytest.raises(Exception, match="unknown host 'nope'"):
        select(t, "nope")
    text = inventory_text(plan, t)
    assert "StrictHostKeyChecking=yes" in text and "StrictHostKeyChecking=no" not in text
    assert json.loads(text)["all"]["vars"]["ansible_python_interpreter"] == "/usr/bin/python3"


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible not installed")
def test_offline_dry_run_checks_every_phase_without_hosts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from provision.execute import offline

    seen: list[tuple[Path, str]] = []
    check = offline.offline_check

    def spy(*args: Any, **kw: Any) -> offline.OfflineReport:
        seen.append((args[3], tempfile.gettempdir()))
        return check(*args, **kw)

    monkeypatch.setattr(offline, "offline_check", spy)
    result = CliRunner().invoke(cli, ["provision", "site", str(LAB_SITE), "--dry-run",
                                      "--offline", "--no-lab", "--phases", "all",
                                      "--store", str(tmp_path / "x.db")],
                                obj={})
    assert result.exit_code == 0, result.output
    run_tmp = LAB_SITE / ".gpuctl" / "runs" / str(os.getpid()) / "tmp"
    [(inv, tmp)] = seen  # its temp files (and Ansible's) in its run directory, not /tmp
    assert inv.parent.parent == run_tmp and tmp == str(run_tmp)
    assert not run_tmp.parent.exists()
    out = result.output
    assert "rdma_tuning : Write memlock and nofile limits" in out
    if (ROOT / "playbooks" / "nvidia.yml").exists():
        assert "nvidia on lab-gpu-01" in out
    assert "Boot = Pxe, Once" in out
    assert "Pulumi Automation API" in out
    assert "gpuctl burnin run SITE --rack a01 --level standard" in out
    assert not (tmp_path / "x.db").exists()  # offline: no store, no lock


def test_offline_without_dry_run_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["provision", "site", str(LAB_SITE), "--offline"],
                                obj={})
    assert result.exit_code == 2 and "--offline only goes with --dry-run" in result.output


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible not installed")
def test_playbooks_pass_the_syntax_check() -> None:
    """ansible-lint over the same tree: tests/test_roles_static.py."""
    for playbook in ("site.yml", "base.yml"):
        err = ansible.syntax_check(Path("/dev/null"), ROOT / "playbooks" / playbook)
        assert err is None, err


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible not installed")
def test_offline_check_reports_a_broken_playbook(tmp_path: Path) -> None:
    from provision.execute.offline import offline_check

    books = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", books)
    (books / "base.yml").write_text("- name: Broken\n  hosts: gpuctl_nodes\n  tasks:\n"
                                    "    - name: Bad\n      ansible.builtin.not_a_module: {}\n")
    _, plan = load_and_plan(LAB_SITE)
    t = resolve(plan)
    inv = tmp_path / "inventory.json"
    inv.write_text(inventory_text(plan, t))
    report = offline_check(t, select(t, None), ["preflight", "base"], inv, playbooks=books)
    bad = [p for p in report.problems if p.startswith("base.yml")]
    assert bad and "not_a_module" in bad[0], report.problems


def test_history_lists_runs_latest_first(tmp_path: Path) -> None:
    runner, hosts = make_runner(tmp_path, FakePlaybooks(bad={"lab-gpu-03"}))
    runner.run(opts(hosts))
    runner.store.close()
    result = CliRunner().invoke(cli, ["provision", "history", str(LAB_SITE), "--store",
                                      str(tmp_path / "p.db"), "--format", "json"], obj={})
    assert result.exit_code == 0, result.output
    import json

    [row] = json.loads(result.output)
    assert row["status"] == "failed" and row["failed hosts"] == "lab-gpu-03"
    assert row["phases"] == "base=failed, kubernetes=skipped"


def test_run_inventory_holds_the_selected_hosts_and_the_control_plane() -> None:
    import yaml

    from provision.execute.session import inventory_hosts, rendered_inventory

    _, plan = load_and_plan(LAB_SITE)
    t = resolve(plan)
    keep = inventory_hosts(select(t, "lab-gpu-01"),
                           {"kubernetes_node_control_plane_host": "lab-gpu-03"})
    assert keep == {"lab-gpu-01", "lab-gpu-03"}
    assert inventory_hosts(["lab-gpu-02"], {}) == {"lab-gpu-02"}
    with rendered_inventory(plan, t, keep) as path:
        data = yaml.safe_load(path.read_text())
    racks = data["all"]["children"]["gpuctl_nodes"]["children"]
    assert sorted(h for r in racks.values() for h in r["hosts"]) == ["lab-gpu-01", "lab-gpu-03"]
    with rendered_inventory(plan, t) as path:
        data = yaml.safe_load(path.read_text())
    racks = data["all"]["children"]["gpuctl_nodes"]["children"]
    assert sorted(h for r in racks.values() for h in r["hosts"]) == [
        f"lab-gpu-0{i}" for i in range(1, 5)]


def test_phases_skip_the_hosts_they_do_not_apply_to(tmp_path: Path) -> None:
    """On a mixed site the NVIDIA and burn-in phases never reach the storage servers: the
    playbook is limited to GPU nodes, storage hosts are recorded as skipped with the reason,
    and burn-in is listed only for racks with GPU nodes."""
    from tests.mixed_site import write_mixed_site

    site = write_mixed_site(tmp_path / "mixed")
    _, plan = load_and_plan(site)
    t = resolve(plan)
    fake = FakePlaybooks(bad=set())
    runner = phases.Runner(targets=t, store=open_store(tmp_path / "p.db"),
                           reporter=QuietReporter(), executor=steps.SerialExecutor(),
                           client=no_client, run_playbook=fake)
    hosts = select(t, "rack=a01,s01")
    report = runner.run(phases.RunOptions(
        phases=["base", "nvidia", "burnin"], hosts=hosts, plan_version="v1",
        inventory=Path("/nonexistent"), dry_run=True, plan=plan, site_path=site))
    dgx = [h for h in hosts if h.startswith("dgx-")]
    assert len(dgx) == 4 and len(hosts) == 20
    assert fake.calls == [hosts, dgx]  # base on every host, nvidia on the GPU nodes only
    assert report.results[("nvidia", "stor-001")].detail == "nvidia does not apply: no GPUs"
    assert report.results[("burnin", "stor-016")].status == "skipped"
    assert "--rack a01" in report.results[("burnin", "dgx-001")].detail
    assert report.status == "ok"
    only_storage = runner.run(phases.RunOptions(
        phases=["nvidia", "burnin"], hosts=select(t, "rack=s01"), plan_version="v1",
        inventory=Path("/nonexistent"), dry_run=True, plan=plan, site_path=site))
    assert only_storage.phase_status == {"nvidia": "skipped", "burnin": "skipped"}
    assert len(fake.calls) == 2


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible not installed")
@pytest.mark.parametrize("which", ["mixed", "two-hall-storage"])
def test_offline_dry_run_of_a_mixed_site_keeps_gpu_work_off_storage(tmp_path: Path,
                                                                    which: str) -> None:
    """A DGX H200 hall and 64 GPU-less storage servers (a synthesized one-hall site, and the
    two-hall example site whose storage is in a hall of its own): no GPU stack, fabric or
    Kubernetes work on storage nodes, and burn-in only for the racks with GPU nodes."""
    from tests.mixed_site import write_mixed_site

    site = (write_mixed_site(tmp_path / "mixed") if which == "mixed"
            else ROOT / "inventory" / "sites" / which)
    result = CliRunner().invoke(cli, ["provision", "site", str(site), "--dry-run", "--offline",
                                      "--no-lab", "--phases", "all", "--format", "json"],
                                obj={})
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{\n"):])
    assert out["problems"] == []
    by = {p["phase"]: p for p in out["phases"]}
    storage = [f"stor-{i:03d}" for i in range(1, 65)]
    for phase in ("preflight", "image", "base"):
        assert set(storage) <= set(by[phase]["hosts"]) and not by[phase]["skipped"]
    for phase, why in (("nvidia", "no GPUs"), ("fabric", "no compute-fabric HCAs"),
                       ("kubernetes", "a storage node is not a Kubernetes node"),
                       ("burnin", "no GPUs")):
        assert not set(storage) & set(by[phase]["hosts"]), phase
        assert by[phase]["skipped"] == [{"why": why, "hosts": storage}], phase
        assert len(by[phase]["hosts"]) == 127
    assert any(t.startswith("nvidia_driver : ") for t in by["nvidia"]["tasks"])
    assert any(t.startswith("container_toolkit : ") for t in by["kubernetes"]["tasks"])
    racks = [t.split("--rack ")[1].split()[0] for t in by["burnin"]["tasks"]]
    assert racks == [f"{row}{i:02d}" for row in "ab" for i in range(1, 17)]


def test_site_playbook_imports_every_phase_playbook_in_order() -> None:
    """playbooks/site.yml (for runs by hand) is every Ansible phase, in bring-up order."""
    import yaml

    plays = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    assert [p["ansible.builtin.import_playbook"] for p in plays] == list(
        phases.PLAYBOOK_PHASES.values())


def test_an_ansible_failure_is_stored_when_the_event_arrives(tmp_path: Path) -> None:
    """Durable as soon as known: a host out of the play is in the store while the playbook
    still runs (a kill after that moment keeps it)."""
    seen: list[list[tuple[str, str]]] = []

    class Watching(FakePlaybooks):
        def __call__(self, req: ansible.PlaybookRequest, *, on_update: Any,
                     cancelled: Any) -> ansible.PlaybookResult:
            on_update({"lab-gpu-03": HostTally(unreachable=1, message="ssh: no route")})
            [run] = runner.store.runs(site="lab")
            seen.append([(r.host, r.status) for r in runner.store.results_for(run.id)])
            return super().__call__(req, on_update=on_update, cancelled=cancelled)

    runner, hosts = make_runner(tmp_path, Watching(bad=set()))
    runner.run(opts(hosts, phases=["base"]))
    assert seen == [[("lab-gpu-03", "unreachable")]]


RECORDED = ROOT / "tests" / "recordings" / "ansible-two-hosts.jsonl"
AS_LAB = {"fast": "lab-gpu-01", "slow": "lab-gpu-02"}


def _recorded() -> list[dict[str, Any]]:
    out = []
    for line in RECORDED.read_text().splitlines():
        event = json.loads(line)
        data = event["event_data"]
        if "host" in data:
            data["host"] = AS_LAB[data["host"]]
        else:
            for key, per_host in data.items():
                data[key] = {AS_LAB[h]: n for h, n in per_host.items()}
        out.append(event)
    return out


def test_each_host_is_stored_the_moment_it_finishes_from_the_event_stream(
        tmp_path: Path) -> None:
    """The recorded stream replayed through run_playbook's own event handler: a host's
    result is in the store once its done event arrived (the other host still running), not
    at the end of the playbook; the final stats then stand."""
    stored_after: list[tuple[str, str, dict[str, str]]] = []

    def replay(req: ansible.PlaybookRequest, *, on_update: Any,
               cancelled: Any) -> ansible.PlaybookResult:
        box: dict[str, Any] = {"tallies": {}, "stats": {}}
        handle = ansible._event_callback(on_update, box)
        [run] = runner.store.runs(site="lab", limit=1)
        for event in _recorded():
            handle(event)
            rows = {r.host: r.status for r in runner.store.results_for(run.id, "base")}
            stored_after.append((event["event"], event["event_data"].get("task", ""), rows))
        return ansible.PlaybookResult("successful", 0, box["stats"], box["tallies"])

    runner, _ = make_runner(tmp_path, FakePlaybooks(bad=set()))
    runner.run_playbook = replay
    report = runner.run(opts(["lab-gpu-01", "lab-gpu-02"], phases=["base"]))
    done = [rows for kind, task, rows in stored_after if task == events.DONE_TASK]
    assert done == [{"lab-gpu-01": "changed"}, {"lab-gpu-01": "changed", "lab-gpu-02": "changed"}]
    before_done = [rows for kind, task, rows in stored_after[:-3]]
    assert all(rows == {} for rows in before_done), "stored before the host finished"
    assert report.status == "ok"
    [run] = runner.store.runs(site="lab", limit=1)
    final = {r.host: (r.status, r.stats) for r in runner.store.results_for(run.id, "base")}
    assert final["lab-gpu-01"][1]["ok"] == 3 and final["lab-gpu-01"][1]["skipped"] == 2


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible not installed")
def test_run_playbook_marks_each_host_finished(tmp_path: Path) -> None:
    """The real thing behind the recording: the done task runs after the playbook's last
    play on every host still in play (playbook_dir is the playbook's own)."""
    import sys

    inv = tmp_path / "hosts.json"
    inv.write_text(json.dumps({"all": {"hosts": {h: {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        for h in AS_LAB}}}))
    seen: list[dict[str, HostTally]] = []
    res = ansible.run_playbook(
        ansible.PlaybookRequest(playbook=RECORDED.with_suffix(".yml"), inventory=inv,
                                extravars={"out_dir": str(tmp_path)},
                                workdir=rundir.RunDir(tmp_path / "run")),
        on_update=lambda t: seen.append(dict(t)))
    assert res.status == "successful"
    assert {h: t.finished for h, t in res.tallies.items()} == {"fast": True, "slow": True}
    assert {h: events.tally_stats(t) for h, t in res.tallies.items()} == {
        h: {k: s[k] for k in events.OUTCOMES} for h, s in res.stats.items()}
    first = next(t for t in seen if any(x.finished for x in t.values()))
    assert not all(x.finished for x in first.values())  # one host's finish is its own event
