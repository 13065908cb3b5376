"""Probe command builders, result helpers, the registry, the capture splitter and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from provision.burnin.probes import (
    KINDS,
    dcgmi_diag,
    infiniband,
    lspci,
    nccl,
    nvidia_smi_csv,
    nvidia_smi_q,
    nvidia_smi_xml,
    nvlink,
    perftest,
    to_data,
    to_json,
    xid,
)
from provision.burnin.probes.capture import kind_for_command, split_capture
from provision.cli.main import cli
from provision.errors import ParseError

GOLDEN = Path(__file__).parent / "golden"


def words(line: str) -> list[str]:
    return line.split()


def golden(kind: str, case: str) -> str:
    return (GOLDEN / kind / f"{case}.txt").read_text(encoding="utf-8")


# ---------------------------------------------------------------- command builders


BUILDERS = {
    "nvidia-smi-xml": nvidia_smi_xml.command, "nvidia-smi-q": nvidia_smi_q.command,
    "nvidia-smi-csv": nvidia_smi_csv.command, "nvlink": nvlink.command, "xid": xid.command,
    "dcgmi-diag": dcgmi_diag.command, "ibstat": infiniband.ibstat_command,
    "ibstatus": infiniband.ibstatus_command, "lspci": lspci.command,
    "ib-write-bw": perftest.write_bw_command, "ib-write-lat": perftest.write_lat_command,
    "nccl": nccl.command,
}
"""Each probe kind's default command builder (arguments differ per tool)."""


def test_builders_return_argv_lists_of_plain_strings() -> None:
    defaults = {
        "ib-write-bw": ("mlx5_0",),
        "ib-write-lat": ("mlx5_0",),
    }
    assert set(BUILDERS) == set(KINDS)
    for kind, build in BUILDERS.items():
        argv = build(*defaults.get(kind, ()))
        assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv), kind
        assert not any(ch in arg for arg in argv for ch in ";|&$`<>"), kind


def test_nvidia_smi_builders() -> None:
    assert nvidia_smi_xml.command() == ["nvidia-smi", "-q", "-x"]
    assert nvidia_smi_q.command() == ["nvidia-smi", "-q"]
    assert nvidia_smi_q.command(("ECC", "PAGE_RETIREMENT")) == words(
        "nvidia-smi -q -d ECC,PAGE_RETIREMENT"
    )
    assert nvlink.command() == ["nvidia-smi", "nvlink", "--status"]
    argv = nvidia_smi_csv.command()
    assert argv[0] == "nvidia-smi" and argv[-1] == "--format=csv,noheader,nounits"
    assert argv[1] == "--query-gpu=" + ",".join(nvidia_smi_csv.FIELDS)
    with_header = nvidia_smi_csv.command(header=True, units=True, fields=["index", "name"])
    assert with_header == ["nvidia-smi", "--query-gpu=index,name", "--format=csv"]


def test_other_builders() -> None:
    assert dcgmi_diag.command(3) == words("dcgmi diag -r 3 -j")
    with pytest.raises(ValueError, match="1, 2, 3 or 4"):
        dcgmi_diag.command(5)
    assert infiniband.ibstat_command() == ["ibstat"]
    assert infiniband.ibstatus_command() == ["ibstatus"]
    assert lspci.command() == ["lspci", "-D", "-vvv"]
    assert xid.command() == ["dmesg", "--time-format=iso"]
    assert xid.fabric_manager_command("/var/log/fm.log") == ["cat", "--", "/var/log/fm.log"]
    assert nccl.command("all_to_all_perf", max_bytes="8G", check=False) == words(
        "all_to_all_perf -b 8 -e 8G -f 2 -g 1 -n 20 -w 5 -c 0"
    )
    with pytest.raises(ValueError, match="all_reduce_perf"):
        nccl.command("all_reduce_perf; rm -rf /")


def test_perftest_builders_server_and_client() -> None:
    assert perftest.write_bw_command("mlx5_0") == words(
        "ib_write_bw -d mlx5_0 -F -s 1048576 -q 1 --report_gbits"
    )
    assert perftest.write_bw_command(
        "mlx5_3", "10.1.0.7", size=None, qps=4, duration_s=10, port=18516, gid_index=3
    ) == words("ib_write_bw -d mlx5_3 -F -a -p 18516 -x 3 -q 4 --report_gbits -D 10 10.1.0.7")
    assert perftest.write_lat_command("mlx5_0", "gpu-n02") == words(
        "ib_write_lat -d mlx5_0 -F -s 2 -n 5000 gpu-n02"
    )


# ---------------------------------------------------------------- result helpers


def test_nccl_large_message_busbw_judges_large_rows_not_the_average() -> None:
    result = nccl.parse(golden("nccl", "allreduce_2node_new_layout_with_noise"))
    assert result.avg_busbw_gbps == 150.323
    # rows >= 1 GiB: best of (out, in) = 152.84, 153.48, 153.69 -> the worst is 152.84
    assert nccl.large_message_busbw(result) == 152.84
    assert nccl.large_message_busbw(result, min_bytes=4 << 30) == 153.69
    assert nccl.large_message_busbw(result, min_bytes=8 << 30) is None
    assert result.rows[0].best_busbw_gbps == 141.98
    assert result.wrong_rows == 0


def test_nccl_data_corruption_is_visible() -> None:
    result = nccl.parse(golden("nccl", "data_corruption_wrong_counts"))
    assert result.wrong_rows == 2
    assert result.out_of_bounds == 2 and result.out_of_bounds_ok is False


def test_nccl_second_run_in_one_output_is_rejected() -> None:
    text = golden("nccl", "alltoall_old_layout_error_column")
    with pytest.raises(ParseError, match="a second nccl-tests run starts here"):
        nccl.parse(text + text)


def test_nvidia_smi_helpers() -> None:
    report = nvidia_smi_xml.parse(golden("nvidia-smi-xml", "h100_2gpu_remap_pending_v12"))
    assert [g.pcie.downgraded for g in report.gpus] == [False, True]
    legacy = nvidia_smi_csv.parse(
        "0, NVIDIA H100 80GB HBM3, 35\n1, NVIDIA H100 80GB HBM3, 36\n",
        fields=["index", "name", "temperature.gpu"],
    )
    assert [g.temperature_gpu_c for g in legacy.gpus] == [35, 36]


def test_text_form_reports_ecc_remap_and_pcie_downgrade() -> None:
    text = nvidia_smi_q.parse(golden("nvidia-smi-q", "h200_2gpu_dbe_remap_pending"))
    assert text.gpus[1].ecc_volatile.uncorrected == 2
    assert text.gpus[1].remapped_rows.pending is True
    assert text.gpus[1].pcie.gen_current == 3 and text.gpus[1].pcie.downgraded


def test_nvlink_ibstat_lspci_xid_dcgm_helpers() -> None:
    status = nvlink.parse(golden("nvlink", "a100_two_links_down_one_gpu_dark"))
    assert [g.active_links for g in status.gpus] == [10, 0, 12]
    devices = lspci.parse(golden("lspci", "hgx_slot_annotated_downgrades")).devices
    assert [d.address for d in devices if d.downgraded] == ["0000:15:01.0", "0000:19:00.0"]
    assert [d.address for d in devices if d.unreadable] == ["0000:1a:00.0"]
    log = xid.parse(golden("xid", "syslog_ib_flaps_and_remap"))
    assert log.link_flaps() == {"ibp220s0": 1, "ibp77s0": 2}
    assert dcgmi_diag.parse(golden("dcgmi-diag", "dcgm3_level1_all_pass_nulls")).passed
    assert not dcgmi_diag.parse(golden("dcgmi-diag", "dcgm4_level2_two_gpus")).passed
    assert not dcgmi_diag.parse(golden("dcgmi-diag", "dcgm3_runtime_error")).passed
    ports = infiniband.parse_ibstatus(golden("ibstatus", "hdr_down_port_and_roce"))
    states = [f"{ca.name}:{p.port}={p.state}" for ca in ports.cas for p in ca.ports]
    assert states == words(
        "mlx5_0:1=Active mlx5_1:1=Down mlx5_2:1=Init mlx5_3:1=Active mlx5_3:2=Down"
    )


def test_perftest_units_normalise_to_gbps() -> None:
    mb = perftest.parse_write_bw(golden("ib-write-bw", "client_ib_ndr_sweep_mbsec"))
    row = mb.rows[-1]
    assert row.unit == "MB/sec" and row.bw_average == 46688.02
    assert row.bw_average_gbps == pytest.approx(46688.02 * 2**20 * 8 / 1e9, abs=1e-3)
    gb = perftest.parse_write_bw(golden("ib-write-bw", "roce_duration_gbits_4qp"))
    assert gb.unit == "Gb/sec" and gb.rows[0].bw_average_gbps == 181.63


# ---------------------------------------------------------------- registry and JSON


def test_to_json_is_deterministic_and_keeps_field_order() -> None:
    result = nvlink.parse(golden("nvlink", "h100_2gpu_18_links"))
    rendered = to_json(result)
    assert rendered == to_json(nvlink.parse(golden("nvlink", "h100_2gpu_18_links")))
    assert list(json.loads(rendered)["gpus"][0]) == words("index name uuid all_inactive links")


def test_to_data_accepts_pydantic_models_and_rejects_other_values() -> None:
    class Probe(BaseModel):
        name: str
        value: int

    assert to_data(Probe(name="x", value=1)) == {"name": "x", "value": 1}
    with pytest.raises(TypeError, match="not a parse result"):
        to_data({"a": 1})


# ---------------------------------------------------------------- capture splitting


CAPTURE = """\
################################################################################
# probe :: links
# $ nvidia-smi nvlink -s
################################################################################
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6)
\t Link 0: 26.562 GB/s


################################################################################
# probe :: version
# $ nvidia-smi --version
################################################################################
NVIDIA-SMI version  : 550.144.03
"""


def test_split_capture_and_kind_for_command() -> None:
    sections = split_capture(CAPTURE)
    assert [(s.title, s.command, s.line) for s in sections] == [
        ("probe :: links", "nvidia-smi nvlink -s", 5),
        ("probe :: version", "nvidia-smi --version", 13),
    ]
    assert nvlink.parse(sections[0].body).gpus[0].links[0].speed_gbps == 26.562
    assert [kind_for_command(s.command or "") for s in sections] == ["nvlink", None]
    with pytest.raises(ParseError, match="no '####' framed section"):
        split_capture("just text\n")


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("nvidia-smi -q -x", "nvidia-smi-xml"),
        ("/usr/bin/nvidia-smi -q", "nvidia-smi-q"),
        ("nvidia-smi -q -d PAGE_RETIREMENT", "nvidia-smi-q"),
        ("nvidia-smi --query-gpu=index,name --format=csv,noheader", "nvidia-smi-csv"),
        ("nvidia-smi nvlink --status", "nvlink"),
        ("nvidia-smi topo -m", None),
        ("dcgmi diag -r 2 -j", "dcgmi-diag"),
        ("dcgmi diag -r 2", None),
        ("lspci -D -vvv", "lspci"),
        ("lspci", None),
        ("ib_write_bw -d mlx5_0 10.0.0.2", "ib-write-bw"),
        ("/opt/nccl-tests/build/all_gather_perf -b 8", "nccl"),
        ("dmesg --time-format=iso", "xid"),
        ("ibstatus", "ibstatus"),
        ("echo 'unbalanced", None),
    ],
)
def test_kind_for_command(command: str, kind: str | None) -> None:
    assert kind_for_command(command) == kind


# ---------------------------------------------------------------- CLI


def test_cli_parse_prints_json(runner: CliRunner) -> None:
    path = GOLDEN / "ibstat" / "ndr_mixed_down_polling_dualport.txt"
    result = runner.invoke(cli, ["burnin", "parse", "ibstat", str(path)], obj={})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["source"] == "ibstat"
    assert [ca["name"] for ca in data["cas"]] == words("mlx5_0 mlx5_1 mlx5_2 mlx5_3")
    assert result.output == to_json(infiniband.parse_ibstat(path.read_text())) + "\n"


def test_cli_parse_reads_stdin(runner: CliRunner) -> None:
    text = golden("nvlink", "h100_2gpu_18_links")
    result = runner.invoke(cli, ["burnin", "parse", "nvlink", "-"], input=text, obj={})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["gpus"]) == 2


def test_cli_parse_error_is_one_line_and_exit_2(runner: CliRunner) -> None:
    path = GOLDEN / "ibstat" / "ibpanic_after_two_cas.txt"
    result = runner.invoke(cli, ["burnin", "parse", "ibstat", str(path)], obj={})
    assert result.exit_code == 2
    assert result.output.startswith(f"gpuctl: error: {path}: ibstat: ibstat reported an error")
    assert result.output.count("\n") == 1
    piped = runner.invoke(cli, ["burnin", "parse", "nccl", "-"], input="garbage\n", obj={})
    assert piped.exit_code == 2
    assert piped.output.startswith("gpuctl: error: <stdin>: nccl: no '# nThread")


def test_cli_usage_errors_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    unknown = runner.invoke(cli, ["burnin", "parse", "gpu-burn", "x"], obj={})
    assert unknown.exit_code == 2 and "'gpu-burn' is not one of" in unknown.output
    missing = runner.invoke(cli, ["burnin", "parse", "nvlink", str(tmp_path / "no")], obj={})
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_cli_help_lists_every_kind(runner: CliRunner) -> None:
    for argv in (["burnin", "--help"], ["burnin", "parse", "--help"]):
        result = runner.invoke(cli, argv, obj={})
        assert result.exit_code == 0
        for kind in KINDS:
            assert f"  {kind}\n" in result.output, (argv, kind)
    group = runner.invoke(cli, ["burnin", "--help"], obj={}).output
    assert "run" in group and "history" in group and "parse" in group
