"""``gpuctl burnin run`` against the lab: real SSH into lab hosts, simulated GPUs and HCAs.

Brings up a lab of its own (a copy of the ``lab`` site under another site name: a ``lab``
someone brought up is not in its way), injects faults, and checks that burn-in fails naming
exactly the faulty nodes, rails and reasons; then clears the faults and checks that it
passes. The lab is always torn down. Needs root and the lab tools (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from burnin_labsite import burnin_lab, own_site  # noqa: E402

from provision.cli.main import cli  # noqa: E402

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# node -> (fault kind, params); xid and gpu-missing together: Xid 79 is the GPU falling off
FAULTS: dict[str, list[tuple[str, dict[str, int]]]] = {
    "lab-gpu-01": [("gpu-missing", {"gpu": 3}), ("xid", {"gpu": 3, "xid": 79})],
    "lab-gpu-02": [("hca-200g", {"hca": 2})],
    "lab-gpu-03": [("slow-nccl", {"percent": 50})],
}


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    missing = [t for t in ("ip", "ibsim", "opensm", "sshd", "nsenter", "ibnetdiscover")
               if shutil.which(t) is None and not os.path.exists(f"/usr/sbin/{t}")]
    try:
        import provision.lab.from_plan  # noqa: F401
    except ImportError:
        missing.append("provision.lab.from_plan")
    return f"lab tools missing: {', '.join(missing)}" if missing else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(site dir, lab dir)."""
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("burnin-lab")
    site = own_site(tmp, "bi")
    with burnin_lab(site, tmp / "lab") as lab_dir:
        yield site, lab_dir


def _run(lab: tuple[Path, Path], tmp: Path, name: str
         ) -> tuple[int, dict[str, object], Path]:
    reports = tmp / name
    site, lab_dir = lab
    result = CliRunner().invoke(cli, [
        "burnin", "run", str(site), "--rack", "a01", "--level", "standard",
        "--lab-dir", str(lab_dir), "--store", str(tmp / "burnin.db"), "--report-dir",
        str(reports), "--format", "json", "--timeout", "120"], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    return result.exit_code, data, reports


def _junit_ok(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert suites and all(s.get("tests") == str(len(s.findall("testcase"))) for s in suites)
    for s in suites:
        assert s.get("failures") == str(len(s.findall("testcase/failure")))
        cases = s.findall("testcase")
        failed = [c.find("failure") is not None for c in cases]
        assert failed == sorted(failed, reverse=True), "failures first"
    assert root.get("failures") == str(len(root.findall("testsuite/testcase/failure")))
    return root


def _reasons(node: dict[str, object]) -> str:
    failures = node["failures"]
    assert isinstance(failures, list)
    return " | ".join(f"{f['test']} {f.get('rail', '')} {f['reason']}" for f in failures)


def test_burnin_fails_on_faults_then_passes(lab: tuple[Path, Path], tmp_path: Path) -> None:
    from provision.lab.hwsim import clear_faults, set_fault

    site, lab_dir = lab
    sim = lab_dir / "hwsim"
    for node, faults in FAULTS.items():
        for kind, params in faults:
            set_fault(sim, node, kind, **params)
    try:
        code, data, reports = _run(lab, tmp_path, "faulty")
    finally:
        clear_faults(sim)
    assert code == 1
    assert data["fabric"]["status"] == "pass", data["fabric"]  # type: ignore[index]
    nodes = {n["node"]: n for n in data["nodes"]}  # type: ignore[attr-defined]
    failed = {n for n, v in nodes.items() if v["status"] == "fail"}
    assert failed == set(FAULTS), {n: _reasons(v) for n, v in nodes.items()}
    assert nodes["lab-gpu-04"]["status"] in ("pass", "warn")
    one, two, three = (_reasons(nodes[f"lab-gpu-0{i}"]) for i in (1, 2, 3))
    assert "7 of 8 GPUs" in one and "Xid 79" in one
    assert nodes["lab-gpu-02"]["failed_rails"] == ["mlx5_2"], two
    assert "ib-write-bw mlx5_2" in two and "< 180" in two
    assert "nccl-single" in three and "< 210" in three
    assert nodes["lab-gpu-01"]["failed_rails"] == [] and nodes["lab-gpu-03"]["failed_rails"] == []
    for suffix in (".html", ".xml", ".json"):
        assert (reports / f"burnin-{site.name}-a01-run{data['run']}{suffix}").exists()
    root = _junit_ok(reports / f"burnin-{site.name}-a01-run{data['run']}.xml")
    first = root.findall("testsuite")[1]
    assert first.get("name", "").startswith(f"{site.name}.lab-gpu-0")
    assert first.get("failures") != "0"
    html = (reports / f"burnin-{site.name}-a01-run{data['run']}.html").read_text()
    assert "<svg" in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")

    code, data, reports = _run(lab, tmp_path, "clean")
    assert code == 0, {n["node"]: _reasons(n) for n in data["nodes"]}  # type: ignore[attr-defined]
    assert all(n["status"] == "pass" for n in data["nodes"])  # type: ignore[attr-defined]
    _junit_ok(reports / f"burnin-{site.name}-a01-run{data['run']}.xml")
    assert (reports / f"burnin-{site.name}-a01-run{data['run']}.html").exists()
    assert not (site / ".gpuctl" / "runs" / str(os.getpid())).exists()  # its run dir went

    history = CliRunner().invoke(cli, ["burnin", "history", str(site), "--store",
                                       str(tmp_path / "burnin.db"), "--format", "json"])
    assert history.exit_code == 0, history.output
    states = {n["node"]: n["state"] for n in json.loads(history.output)["nodes"]}
    assert states == {f"lab-gpu-0{i}": "passed" for i in range(1, 5)}
