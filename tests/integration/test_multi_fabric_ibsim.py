"""Two InfiniBand fabrics of one site, each a real subnet: ibsim per fabric, OpenSM per fabric
with that fabric's rendered opensm.conf and GUID files, and ``gpuctl fabric verify --live
--fabric NAME`` discovering each fabric from one of its own HCAs.

The two-zone test site (tests/sites/two-zone) has a compute fabric (4 DGX A100, 8 HCAs each)
and a zone2 fabric (8 PCIe nodes, 1 HCA each). One fault is injected into each fabric; both
simulators run at once, and verify of each fabric must report exactly its own fault. Needs
root, ibsim-utils, opensm and infiniband-diags; every wait is bounded and ibsim is stopped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner

from provision.burnin.session import fabric_check
from provision.burnin.targets import rack_targets
from provision.cli.main import cli
from provision.execute.access import Access
from provision.fabric.netedit import NetFile
from provision.plan.build import Plan
from provision.plan.load import load_and_plan
from provision.render.artifacts import fabric_tree
from provision.render.ibsim import ib_fabric, ibsim_net, ibsim_sizes
from provision.render.opensm import opensm_conf, resolve_guids, routing
from tests.integration.test_fabric_verify_ibsim import _sim_available, simulated
from tests.integration.test_ibsim_opensm import _available

ROOT = Path(__file__).resolve().parents[2]
TWO_ZONE = ROOT / "tests" / "sites" / "two-zone"
TOOL_S = 60.0

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(_available() is not None or not _sim_available(),
                                 reason=_available() or "needs root, ibsim and ibnetdiscover")]

RACKS = {"compute": "a01", "zone2": "a02"}
"""Where each fabric's nodes are."""

ENGINES = {"compute": "ftree", "zone2": "updn"}
"""Two leaves with hosts: fat-tree routing; zone2's single leaf: up/down (ftree refuses it)."""

FAULTS = {
    "compute": (lambda net: net.swap(("dgx-01 mlx5_0", 1), ("dgx-02 mlx5_0", 1)),
                {("swapped", ("IB:dgx-01:mlx5_0", "IB:dgx-02:mlx5_0"))}, "dgx-03 mlx5_4"),
    "zone2": (lambda net: net.drop(("ff-03 mlx5_0", 1)),
              {("missing", ("IB:ff-03:mlx5_0",))}, "ff-05 mlx5_0"),
}
"""fabric -> (fault injected into its net file, findings verify must report, probe HCA)."""


def _opensm(plan: Plan, fabric: str, env: dict[str, str], work: Path) -> str:
    """Run OpenSM once on ``fabric`` with its rendered files; returns the log."""
    sub = "opensm" if fabric == "compute" else f"opensm/{fabric}"
    files = fabric_tree(plan)
    for name, text in files.items():
        if name.startswith(f"{sub}/") and "/" not in name[len(sub) + 1:]:
            (work / name.rsplit("/", 1)[1]).write_text(text)
    conf = work / "opensm.conf"
    conf.write_text(opensm_conf(plan, resolve_guids(plan), file_dir=str(work),
                                fabric=fabric))
    assert conf.read_text().replace(str(work), f"/etc/{sub}") == files[f"{sub}/opensm.conf"]
    for d in ("tmp", "cache"):
        (work / d).mkdir(exist_ok=True)
    sm_env = dict(os.environ, **env, OSM_TMP_DIR=str(work / "tmp"), OSM_CACHE_DIR=str(work / "cache"))
    sm_env.pop("SIM_HOST", None)  # attach at the net file's first node: the SM node
    res = subprocess.run(["opensm", "-F", str(conf), "-f", str(work / "opensm.log"), "-o",
                          "-d", "2"], env=sm_env, capture_output=True, text=True,
                         timeout=TOOL_S, check=False, cwd=work)
    log = (work / "opensm.log").read_text(errors="replace")
    assert res.returncode == 0, res.stderr[-2000:] + log[-3000:]
    return log


def test_each_fabric_is_its_own_subnet_and_verify_finds_only_its_fault(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = load_and_plan(TWO_ZONE)[1]
    assert plan.ib_names() == ["compute", "zone2"]
    guids = resolve_guids(plan)
    runner = CliRunner()
    with ExitStack() as stack:
        envs: dict[str, dict[str, str]] = {}
        for fabric, (inject, _, _) in FAULTS.items():
            net = NetFile(ibsim_net(plan, guids, fabric=fabric))
            inject(net)
            work = tmp_path / fabric
            envs[fabric] = stack.enter_context(
                simulated(net.text(), work, ibsim_sizes(plan, fabric)))
        assert envs["compute"]["IBSIM_SERVER_PORT"] != envs["zone2"]["IBSIM_SERVER_PORT"]
        for fabric, (_, expected, probe) in FAULTS.items():
            work = tmp_path / fabric
            log = _opensm(plan, fabric, envs[fabric], work)
            assert "SUBNET UP" in log and "Entering MASTER state" in log, log[-3000:]
            engine = routing(ib_fabric(plan, fabric=fabric))[0]
            assert engine == ENGINES[fabric]
            used = re.findall(r"(\w+) tables configured on all switches", log)
            assert used and used[-1] == engine, (used, engine)
            res = runner.invoke(cli, ["fabric", "verify", str(TWO_ZONE), "--fabric", fabric,
                                      "--live", "--timeout", str(TOOL_S), "--format", "json"],
                                env={**envs[fabric], "SIM_HOST": probe})
            assert res.exit_code == 1, res.output
            result = json.loads(res.stdout)
            found = {(f["kind"], tuple(f["cables"])) for f in result["findings"]
                     if f["severity"] == "error"}
            assert found == expected, (fabric, found)
            other = "zone2" if fabric == "compute" else "compute"
            other_hosts = {lk.a for lk in plan.fabrics[other].links if lk.kind == "node-leaf"}
            assert not any(h in json.dumps(result["findings"]) for h in other_hosts)
            planned = len(plan.fabrics[fabric].links)
            assert result["planned_links"] == planned
            assert result["matched"] == planned - (2 if fabric == "compute" else 1)
            # Burn-in's rack check verifies the rack's own fabric, discovered from its HCA.
            rack = RACKS[fabric]
            for key, value in {**envs[fabric], "SIM_HOST": probe}.items():
                monkeypatch.setenv(key, value)
            state, detail, data = fabric_check(plan, rack, rack_targets(plan, rack), Access())
            assert state == "fail", detail
            assert data is not None and data["scope"] == (
                f"rack={rack}" if fabric == "compute" else f"{fabric} fabric, rack={rack}")
            assert {(f["kind"], tuple(f["cables"])) for f in data["findings"]
                    if f["severity"] == "error"} == expected
