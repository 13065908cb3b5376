"""Burn-in thresholds and judges, on outputs of the labelled hardware simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.burnin import judge as j
from provision.burnin.probes import KINDS
from provision.burnin.thresholds import profile_names, thresholds_for
from provision.errors import UsageError
from provision.lab.hwsim import default_personality
from provision.lab.hwsim.local import LocalSim
from provision.plan.lint import KNOWN_PROFILES

A100 = "NVIDIA A100-SXM4-80GB"


@pytest.fixture
def sim(tmp_path: Path) -> LocalSim:
    return LocalSim.create(tmp_path, [default_personality("n1", A100, hca_rate_gbps=200),
                                      default_personality("n2", A100, hca_rate_gbps=200)],
                           epoch=1_700_000_000)


def parsed(sim: LocalSim, host: str, kind: str, argv: list[str]) -> object:
    code, out, err = sim.call(host, argv)
    return KINDS[kind](out)


def test_every_profile_lint_knows_loads() -> None:
    assert profile_names() == sorted(KNOWN_PROFILES)
    for name in KNOWN_PROFILES:
        th = thresholds_for(name)
        assert th.ib_write_bw_floor_gbps == pytest.approx(0.9 * th.ib_rate_gbps)
        assert 79 in th.xid_fatal and th.dcgm_must_pass
    assert thresholds_for("h100-ndr").nccl_single_busbw_gbps == 460
    assert thresholds_for("a100-hdr").nccl_single_busbw_gbps < 230


def test_overrides_apply_and_typos_are_named() -> None:
    th = thresholds_for("a100-hdr", {"nccl_single_busbw_gbps": 150, "outlier_fraction": 0.8})
    assert th.nccl_single_busbw_gbps == 150 and th.outlier_fraction == 0.8
    with pytest.raises(UsageError, match="unknown threshold 'ncl_single'.*allowed: gpu_count"):
        thresholds_for("a100-hdr", {"ncl_single": 1})
    with pytest.raises(UsageError, match="unknown burn-in profile 'x100'.*a100-hdr"):
        thresholds_for("x100")
    with pytest.raises(UsageError, match="outlier_fraction"):
        thresholds_for("a100-hdr", {"outlier_fraction": 2})


def test_healthy_node_passes_every_judge(sim: LocalSim) -> None:
    th = thresholds_for("a100-hdr")
    verdicts = [
        *j.judge_gpus("n1", parsed(sim, "n1", "nvidia-smi-xml", ["nvidia-smi", "-q", "-x"]), th),  # type: ignore[arg-type]
        *j.judge_nvlink("n1", parsed(sim, "n1", "nvlink", ["nvidia-smi", "nvlink", "--status"]), th),  # type: ignore[arg-type]
        *j.judge_xid("n1", parsed(sim, "n1", "xid", ["dmesg"]), th),  # type: ignore[arg-type]
        *j.judge_ib_ports("n1", parsed(sim, "n1", "ibstat", ["ibstat"]), th,  # type: ignore[arg-type]
                          [f"mlx5_{i}" for i in range(8)]),
        *j.judge_dcgm("n1", parsed(sim, "n1", "dcgmi-diag", ["dcgmi", "diag", "-r", "2", "-j"]),  # type: ignore[arg-type]
                      th, 2),
    ]
    assert verdicts and not [v for v in verdicts if v.failed]


def test_faults_fail_with_reasons_and_fixes(sim: LocalSim) -> None:
    th = thresholds_for("a100-hdr")
    sim.fault("n1", "gpu-missing", gpu=2)
    sim.fault("n1", "xid", gpu=1, xid=79)
    sim.fault("n1", "ecc", gpu=4)
    sim.fault("n1", "hca-down", hca=5)
    sim.fault("n1", "nvlink-down", gpu=0)
    sim.fault("n1", "dcgm-fail", gpu=6)
    gpus = j.judge_gpus("n1", parsed(sim, "n1", "nvidia-smi-xml", ["nvidia-smi", "-q", "-x"]), th)  # type: ignore[arg-type]
    fails = {v.test: v for v in gpus if v.failed}
    assert fails["gpu-count"].reason.startswith("7 of 8 GPUs") and fails["gpu-count"].fix
    assert "uncorrectable ECC" in fails["ecc"].reason
    remaps = " | ".join(v.reason for v in gpus if v.test == "row-remap")
    assert "rows remapped for uncorrectable errors" in remaps and "row remap pending" in remaps
    xid = j.judge_xid("n1", parsed(sim, "n1", "xid", ["dmesg"]), th)  # type: ignore[arg-type]
    assert [v.reason.split(" on ")[0] for v in xid] == ["Xid 79 (GPU has fallen off the bus)"]
    ports = j.judge_ib_ports("n1", parsed(sim, "n1", "ibstat", ["ibstat"]), th,  # type: ignore[arg-type]
                             [f"mlx5_{i}" for i in range(8)], {"mlx5_5": "leaf1 port 6"})
    assert [(v.rail, v.failed) for v in ports if v.failed] == [("mlx5_5", True)]
    assert "cable to leaf1 port 6" in next(v.reason for v in ports if v.failed)
    links = j.judge_nvlink("n1", parsed(sim, "n1", "nvlink", ["nvidia-smi", "nvlink", "-s"]), th)  # type: ignore[arg-type]
    assert links[0].failed and "GPU 0: 0/12" in links[0].reason
    diag = j.judge_dcgm("n1", parsed(sim, "n1", "dcgmi-diag", ["dcgmi", "diag", "-r", "2", "-j"]),  # type: ignore[arg-type]
                        th, 2)
    assert diag[0].failed and "memory" in diag[0].reason


def test_nccl_floor_and_rate(sim: LocalSim) -> None:
    th = thresholds_for("a100-hdr")
    argv = ["all_reduce_perf", "-b", "256M", "-e", "4G", "-f", "2", "-g", "8"]
    ok = j.judge_nccl("n1", parsed(sim, "n1", "nccl", argv), th, test="nccl-single",  # type: ignore[arg-type]
                      floor=th.nccl_single_busbw_gbps)
    assert not ok[0].failed and ok[0].value is not None and ok[0].value > 210
    sim.fault("n2", "slow-nccl", percent=50)
    slow = j.judge_nccl("n2", parsed(sim, "n2", "nccl", argv), th, test="nccl-single",  # type: ignore[arg-type]
                        floor=th.nccl_single_busbw_gbps)
    assert slow[0].failed and "< 210 floor" in slow[0].reason
    small = j.judge_nccl("n1", parsed(sim, "n1", "nccl", ["all_reduce_perf", "-b", "8",  # type: ignore[arg-type]
                                                          "-e", "1M", "-f", "2", "-g", "8"]),
                         th, test="nccl-single", floor=210)
    assert small[0].failed and "no message size" in small[0].reason


def test_outliers_fail_against_the_fleet_median_even_above_the_floor() -> None:
    th = thresholds_for("a100-hdr")
    values = {"a": 228.0, "b": 226.0, "c": 227.0, "d": 212.0}
    verdicts = [j.Verdict(n, "nccl-single", j.PASS, f"busbw {v}", metric="busbw_gbps",
                          value=v, threshold=210) for n, v in values.items()]
    stats = j.FleetStats.of(verdicts)
    assert stats.medians[("nccl-single", "busbw_gbps", "")] == pytest.approx(226.5)
    judged = j.outliers(verdicts, stats, thresholds_for("a100-hdr", {"outlier_fraction": 0.95}))
    assert [v.node for v in judged if v.failed] == ["d"]
    assert "fleet median 226.5" in next(v.reason for v in judged if v.failed)
    assert not [v for v in j.outliers(verdicts, stats, th) if v.failed]  # 0.9 x 226.5 = 203.9
    assert j.FleetStats.of(verdicts[:2]).medians == {}  # too few to judge relatively


GOLDEN = Path(__file__).parent / "golden"


def golden(kind: str, case: str) -> object:
    return KINDS[kind]((GOLDEN / kind / f"{case}.txt").read_text(encoding="utf-8"))


def test_gpu_lost_without_an_xid_line_fails_the_node() -> None:
    th = thresholds_for("h100-ndr")
    verdicts = j.judge_xid("n1", golden("xid", "fallen_off_bus_without_xid"), th)  # type: ignore[arg-type]
    assert [(v.failed, v.metric, v.value) for v in verdicts] == [
        (True, "gpu_fallen-off-bus", 2.0), (True, "gpu_init-failed", 2.0)]
    assert "PCI 0000:db:00.0 fell off the bus" in verdicts[0].reason and verdicts[0].fix
    clean = j.judge_xid("n1", golden("xid", "clean_dmesg_no_events"), th)  # type: ignore[arg-type]
    assert [v.failed for v in clean] == [False]


def test_wrong_counts_in_exponent_form_fail_with_the_count() -> None:
    th = thresholds_for("h100-ndr")
    result = golden("nccl", "wrong_counts_exponent_form")
    verdict, = j.judge_nccl("n1", result, th, test="nccl-single", floor=1.0)  # type: ignore[arg-type]
    assert verdict.failed and verdict.value == 16777200 * 2 + 33554400
    assert verdict.reason.startswith("all_reduce_perf: FAILED data check, 3 rows")
    assert "67108800 wrong elements" in verdict.reason
