"""``gpuctl fabric verify`` end to end on golden captures, and the ibnetdiscover runner."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.errors import ExecutionError
from provision.execute import ibdiscover
from provision.execute.ibdiscover import run_ibnetdiscover

GOLDEN = Path(__file__).resolve().parent / "golden" / "ibnetdiscover"
FAT_SITE = GOLDEN / "sites" / "fat"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["fabric", "verify", *args])


def test_clean_capture_exits_0_with_a_table() -> None:
    got = invoke(str(FAT_SITE), "--observed", str(GOLDEN / "fat_clean.txt"))
    assert got.exit_code == 0, got.output
    assert "fat (whole fabric): 72 of 72 planned cables in scope present" in got.stdout
    assert got.stdout.rstrip().endswith("0 error(s): OK")


def test_faults_exit_1_text_grouped_by_rack() -> None:
    got = invoke(str(FAT_SITE), "--observed", str(GOLDEN / "fat_faults.txt"))
    assert got.exit_code == 1
    out = got.stdout
    assert "rack a01" in out and "swapped" in out and "wrong-width" in out
    assert out.index("IB:ib-leaf001:21") < out.index("IB:lab-gpu-01:mlx5_0") \
        < out.index("IB:lab-gpu-04:mlx5_3")
    assert "5 error(s): FAIL" in out


def test_json_format_and_scope() -> None:
    got = invoke(str(GOLDEN / "sites" / "rail" / "site.yaml"), "--observed",
                 str(GOLDEN / "rail_partial.txt"), "--scope", "su=1", "--format", "json")
    assert got.exit_code == 0, got.output
    out = json.loads(got.stdout)
    assert out["ok"] is True and out["scope"] == "su=1"
    assert out["counts"] == {"not-yet-present": 32}
    assert out["findings"][0]["severity"] == "info"


def test_write_guids_merges_and_sorts(tmp_path: Path) -> None:
    site = tmp_path / "fat"
    shutil.copytree(FAT_SITE, site)
    (site / "discovered_guids.json").write_text('{"zz-old": "0x1", "ib-leaf001": "0x2"}')
    got = invoke(str(site), "--observed", str(GOLDEN / "hw_rail_clean.txt"), "--write-guids")
    assert got.exit_code == 1  # a capture of another site: nothing matches ...
    got = invoke(str(site), "--observed", str(GOLDEN / "fat_clean.txt"), "--write-guids")
    assert got.exit_code == 0
    text = (site / "discovered_guids.json").read_text()
    written = json.loads(text)
    assert list(written) == sorted(written) and written["zz-old"] == "0x1"
    assert written["ib-leaf001"] != "0x2" and len(written) == 36
    assert "wrote 35 GUIDs" in got.stderr


@pytest.mark.parametrize(("args", "message"), [
    ([], "give --observed FILE or --live"),
    (["--observed", "x", "--live"], "give --observed FILE or --live"),
    (["--observed", "/nonexistent/capture.txt"], "cannot read /nonexistent/capture.txt"),
    (["--observed", str(GOLDEN / "garbage_truncated.txt")],
     "garbage_truncated.txt: ibnetdiscover topology, line 15: malformed port line"),
    (["--observed", str(GOLDEN / "fat_clean.txt"), "--scope", "rack=b07"],
     "--scope rack='b07': no such rack"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    got = invoke(str(FAT_SITE), *args)
    assert got.exit_code == 2
    assert message in got.stderr and len(got.stderr.strip().splitlines()) == 1


def test_live_uses_the_runner_and_saves_the_capture(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> str:
        calls.append(kwargs)
        return (GOLDEN / "fat_clean.txt").read_text()

    monkeypatch.setattr(ibdiscover, "run_ibnetdiscover", fake)
    save = tmp_path / "capture.txt"
    got = invoke(str(FAT_SITE), "--live", "--ca", "mlx5_0", "--timeout", "5",
                 "--save-capture", str(save))
    assert got.exit_code == 0, got.output
    assert calls == [{"ca": "mlx5_0", "timeout": 5.0}]
    assert save.read_text() == (GOLDEN / "fat_clean.txt").read_text()


class FakeRun:
    def __init__(self, rc: int = 0, out: str = "topology", err: str = "",
                 exc: BaseException | None = None) -> None:
        self.rc, self.out, self.err, self.exc = rc, out, err, exc
        self.argv: list[str] = []
        self.kwargs: dict[str, Any] = {}

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.argv, self.kwargs = argv, kwargs
        if self.exc is not None:
            raise self.exc
        return subprocess.CompletedProcess(argv, self.rc, self.out, self.err)


def test_runner_argv_env_passthrough_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/umad2sim.so")
    monkeypatch.setenv("SIM_HOST", "lab-gpu-01 mlx5_0")
    run = FakeRun()
    assert run_ibnetdiscover(ca="mlx5_2", port=1, timeout=7, tool="/usr/sbin/ibnetdiscover",
                             extra_env={"IBSIM_SERVER_PORT": "4000"}, runner=run) == "topology"
    assert run.argv == ["/usr/sbin/ibnetdiscover", "-C", "mlx5_2", "-P", "1"]
    env = run.kwargs["env"]
    assert env["LD_PRELOAD"] == "/usr/lib/umad2sim.so" and env["SIM_HOST"] == "lab-gpu-01 mlx5_0"
    assert env["IBSIM_SERVER_PORT"] == "4000" and run.kwargs["timeout"] == 7
    assert "shell" not in run.kwargs


@pytest.mark.parametrize(("fake", "message"), [
    (FakeRun(rc=255, out="", err="ibwarn: x\nibpanic: can't open UMAD port (mlx5_9:0)\n"),
     "ibnetdiscover failed (exit 255): ibpanic: can't open UMAD port (mlx5_9:0)"),
    (FakeRun(exc=subprocess.TimeoutExpired(["ibnetdiscover"], 3)),
     "ibnetdiscover did not finish within 3 s"),
    (FakeRun(exc=FileNotFoundError(2, "No such file or directory")),
     "cannot run /x/ibnetdiscover: No such file or directory"),
])
def test_runner_failures_are_one_line(fake: FakeRun, message: str) -> None:
    with pytest.raises(ExecutionError) as err:
        run_ibnetdiscover(timeout=3, tool="/x/ibnetdiscover", runner=fake)
    assert message in str(err.value)


def test_missing_tool_is_an_execution_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ibdiscover, "SBIN_DIRS", ())
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ExecutionError, match="install infiniband-diags"):
        ibdiscover.find_tool("ibnetdiscover")
