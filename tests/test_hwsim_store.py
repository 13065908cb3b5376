"""Hardware simulator: personalities, the fault store, the wrappers and ``gpuctl lab fault``."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from provision.cli.lab_fault import fault
from provision.cli.main import GpuctlGroup
from provision.errors import LabError
from provision.lab.hwsim import (
    COMMANDS,
    FAULT_KINDS,
    LABEL,
    clear_faults,
    default_personality,
    install_commands,
    list_faults,
    read_faults,
    read_personality,
    set_fault,
    write_personality,
)
from provision.lab.hwsim.faults import kmsg_path, read_kmsg


def test_personality_round_trip_and_presets(tmp_path: Path) -> None:
    facts = default_personality("gpu-n01", "NVIDIA A100-SXM4-80GB", hca_rate_gbps=400)
    assert facts.gpu_memory_mib == 81920
    assert facts.ib_write_bw_gbps == pytest.approx(384.0)
    path = write_personality(tmp_path, "gpu-n01", facts)
    assert path == tmp_path / "hosts" / "gpu-n01.json"
    assert read_personality(tmp_path, "gpu-n01") == facts
    assert json.loads(path.read_text())["gpu_product"] == "NVIDIA A100-SXM4-80GB"


def test_personality_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no simulated hardware for host 'nope'"):
        read_personality(tmp_path, "nope")
    bad = default_personality("n1").model_dump()
    bad["gpu_cuont"] = 8
    (tmp_path / "hosts").mkdir()
    (tmp_path / "hosts" / "n1.json").write_text(json.dumps(bad))
    with pytest.raises(LabError, match=r"n1\.json: gpu_cuont: Extra inputs"):
        read_personality(tmp_path, "n1")
    with pytest.raises(LabError, match="invalid simulated host name"):
        read_personality(tmp_path, "../etc")


def test_fault_store_set_list_clear(tmp_path: Path) -> None:
    set_fault(tmp_path, "n1", "ecc", gpu=3)
    set_fault(tmp_path, "n1", "ecc", gpu=3)  # the same fault is not stored twice
    set_fault(tmp_path, "n2", "hca-200g")
    set_fault(tmp_path, "n2", "xid", gpu=1, xid=48)
    listed = list_faults(tmp_path)
    assert list(listed) == ["n1", "n2"]
    assert [f.describe() for f in listed["n1"]] == ["ecc gpu=3"]
    assert [f.describe() for f in listed["n2"]] == ["hca-200g hca=0", "xid gpu=1 xid=48"]
    (line,) = read_kmsg(tmp_path, "n2")
    assert "NVRM: Xid (PCI:0000:2a:00): 48, " in line[1]
    assert clear_faults(tmp_path, "n2") == ["n2"]
    assert read_faults(tmp_path, "n2") == [] and not kmsg_path(tmp_path, "n2").exists()
    assert clear_faults(tmp_path) == ["n1"]
    assert list_faults(tmp_path) == {}


def test_fault_validation_is_one_line_with_the_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(LabError) as err:
        set_fault(tmp_path, "n1", "gpu-on-fire")
    assert str(err.value) == (
        f"unknown fault kind 'gpu-on-fire'; allowed: {', '.join(FAULT_KINDS)}"
    )
    with pytest.raises(LabError, match="takes no parameter 'hca'; allowed: gpu"):
        set_fault(tmp_path, "n1", "ecc", hca=2)
    with pytest.raises(LabError, match="state must be 'Down' or 'Polling'"):
        set_fault(tmp_path, "n1", "hca-down", state="Up")
    with pytest.raises(LabError, match="non-negative integer"):
        set_fault(tmp_path, "n1", "gpu-missing", gpu=-1)
    assert list_faults(tmp_path) == {}


def test_install_commands_writes_labelled_executable_wrappers(tmp_path: Path) -> None:
    written = install_commands(tmp_path / "bin", tmp_path / "sim", python="/usr/bin/python3")
    assert sorted(p.name for p in written) == sorted(COMMANDS)
    wrapper = (tmp_path / "bin" / "nvidia-smi").read_text()
    assert wrapper.startswith("#!/bin/sh\n") and LABEL in wrapper
    assert f"GPUCTL_HWSIM_DIR={tmp_path / 'sim'}" in wrapper
    assert 'exec /usr/bin/python3 -m provision.lab.hwsim.nvidia_smi "$@"' in wrapper
    assert os.stat(tmp_path / "bin" / "mpirun").st_mode & stat.S_IXUSR
    with pytest.raises(LabError, match="allowed: ibstat"):
        install_commands(tmp_path / "bin", tmp_path / "sim", extra=("nvsm",))


class _Root(GpuctlGroup):
    """gpuctl's error handling (one line, exit code) around just the ``fault`` command."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, cmd_name)


def _cli() -> click.Group:
    @click.group(cls=_Root)
    def root() -> None:
        pass

    root.add_command(fault)
    return root


def test_lab_fault_cli(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    for host in ("gpu-n01", "gpu-n02"):
        write_personality(lab / "hwsim", host, default_personality(host))
    runner = CliRunner()

    def gpuctl(*args: str) -> tuple[int, str]:
        res = runner.invoke(_cli(), ["fault", "site", *args, "--lab-dir", str(lab)], obj={})
        return res.exit_code, res.output

    assert gpuctl("gpu-n01", "xid", "--gpu", "2", "--xid", "79") == (
        0,
        "gpu-n01: injected simulated fault xid gpu=2 xid=79\n",
    )
    assert gpuctl("gpu-n02", "hca-down", "--hca", "3")[0] == 0
    code, out = gpuctl("--list", "--format", "json")
    assert code == 0 and json.loads(out) == {
        "gpu-n01": [{"kind": "xid", "params": {"gpu": 2, "xid": 79}}],
        "gpu-n02": [{"kind": "hca-down", "params": {"hca": 3, "state": "Down"}}],
    }
    assert gpuctl("gpu-n02", "--list") == (0, "gpu-n02: hca-down hca=3 state=Down\n")
    code, out = gpuctl("gpu-n01", "warp-drive")
    assert code == 2 and out.startswith(
        "gpuctl: error: unknown fault kind 'warp-drive'; allowed: gpu-missing, "
    )
    assert out.count("\n") == 1
    code, out = gpuctl("gpu-n01", "ecc", "--hca", "1")
    assert code == 2 and "fault 'ecc' takes no parameter 'hca'" in out
    code, out = gpuctl("gpu-n99", "ecc")
    assert code == 2 and "unknown lab node 'gpu-n99'; lab hosts: gpu-n01, gpu-n02" in out
    assert gpuctl("gpu-n01", "--clear") == (0, "cleared simulated faults on gpu-n01\n")
    assert gpuctl("--clear") == (0, "cleared simulated faults on gpu-n02\n")
    assert gpuctl("--list") == (0, "no simulated faults injected\n")
    res = runner.invoke(
        _cli(), ["fault", "site", "gpu-n01", "ecc", "--lab-dir", str(tmp_path / "nolab")], obj={}
    )
    assert res.exit_code == 1 and "no simulated hardware here; is the lab up?" in res.output
