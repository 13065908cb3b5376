"""Lab life cycle: rollback of a failing ``up``, down after a crash, rebuild on a changed
spec, one SM per subnet."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from labspec import make_spec
from test_lab_up import assert_nothing_left

from provision import lab
from provision.errors import LabError
from provision.lab.proc import alive
from provision.lab.state import load_state

pytestmark = pytest.mark.lab


def test_bad_net_file_rolls_back_everything(tmp_path: Path) -> None:
    site = f"lr{os.getpid() % 100000}"
    spec = make_spec(site, 2, seed=os.getpid() + 97)
    # the hosts' HCAs are still nodes of the net file (so the spec validates), but a switch
    # port points at a node that does not exist: ibsim refuses the file after the hosts,
    # their sshds and the BMC emulator have been started
    broken = spec.ibsim_net.replace(f'"{site}-leaf-02"[39]', '"no-such-switch"[39]', 1)
    assert broken != spec.ibsim_net
    root = tmp_path / site
    with pytest.raises(LabError, match=r"lab fabric: ibsim exited: .*no-such-switch"):
        lab.up(dataclasses.replace(spec, ibsim_net=broken), root)
    assert_nothing_left(site, root)
    assert lab.down(site, root) is False


def test_subnet_in_use_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    site = f"ls{os.getpid() % 100000}"
    spec = make_spec(site, 1, seed=os.getpid() + 41)
    other = make_spec(f"{site}x", 1, seed=os.getpid() + 41)
    assert other.gateway == spec.gateway
    lab.up(spec, tmp_path / "first")
    try:
        with pytest.raises(LabError, match="overlaps"):
            lab.up(other, tmp_path / "second")
        assert_nothing_left(other.site, tmp_path / "second")
    finally:
        lab.down(site, tmp_path / "first")
    assert_nothing_left(site, tmp_path / "first")


CRASH = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from labspec import make_spec
from provision.lab import lifecycle
def crash(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # die like a power cut: no rollback, no cleanup
lifecycle.fabric.wait_subnet_up = crash
lifecycle.up(make_spec({site!r}, 2, seed={seed}), {root!r})
"""


def test_down_after_a_crash_half_way(tmp_path: Path) -> None:
    site = f"lc{os.getpid() % 100000}"
    root = tmp_path / site
    code = CRASH.format(tests=str(Path(__file__).parent), site=site, seed=os.getpid() + 13,
                        root=str(root))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr
    state = load_state(root)
    assert state is not None and not state.complete
    assert len(state.processes()) == len(state.hosts) + 3  # everything started, orphaned now
    assert all(alive(p) for p in state.processes())
    report = lab.status(site, root)
    assert not report.ok and not report.complete
    assert lab.down(site, root) is True
    assert_nothing_left(site, root, state)


def test_changed_spec_is_rebuilt(tmp_path: Path) -> None:
    site = f"lg{os.getpid() % 100000}"
    root = tmp_path / site
    first = lab.up(make_spec(site, 1, seed=os.getpid() + 7), root)
    try:
        second = lab.up(make_spec(site, 2, seed=os.getpid() + 7), root)
        assert sorted(second.hosts) == [f"{site}-gpu-01", f"{site}-gpu-02"]
        assert not any(alive(p) for p in first.processes())
        assert lab.status(site, root).ok
    finally:
        lab.down(site, root)
    assert_nothing_left(site, root)


def test_two_planes_get_an_sm_each(tmp_path: Path) -> None:
    site = f"lp{os.getpid() % 100000}"
    root = tmp_path / site
    spec = make_spec(site, 2, seed=os.getpid() + 3, planes=True)
    lab.up(spec, root)
    try:
        report = lab.status(site, root)
        assert report.ok, report.to_dict()
        assert report.fabric is not None
        assert [s.sm_node for s in report.fabric.subnets] == [f"{site}-leaf-01",
                                                              f"{site}-leaf-02"]
        rail1 = spec.hosts[1].hca_ids[1]
        found = lab.run_ib_tool(root, rail1, ["ibnetdiscover"])
        assert found.returncode == 0, found.stderr
        assert f'"{site}-leaf-02"' in found.stdout and f"{site}-leaf-01" not in found.stdout
        assert "mlx5_0" not in found.stdout
    finally:
        lab.down(site, root)
    assert_nothing_left(site, root)
