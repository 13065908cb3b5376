"""Conformance: every public capture in ``../shared/reference/outputs`` is accounted for.

Each file there starts with one ``SOURCE:`` line naming where it was captured; the rest is
the raw output. :data:`FILES` classifies every file by name:

- :class:`Parses` -- the kind's parser must accept it, and ``check`` asserts real content;
- :class:`Rejected` -- the kind's parser must raise ParseError (invalid on purpose, e.g. a
  truncated output or a tool that died mid-listing);
- :class:`Capture` -- several commands concatenated; :func:`split_capture` splits it, every
  section whose command a probe parses must parse, and the remaining commands are listed;
- :class:`OutOfScope` -- not a raw output of any probe (configs, rules, summaries, tools this
  project does not probe); ``rejected_by`` kinds must still refuse it.

A file that is not in :data:`FILES` fails :func:`test_every_reference_file_is_classified`
until someone classifies it. The whole module is skipped when the folder is absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provision.burnin.probes import KINDS, to_json
from provision.burnin.probes.capture import kind_for_command, split_capture
from provision.burnin.probes.gpu import NvidiaSmiReport
from provision.burnin.probes.nccl import large_message_busbw
from provision.errors import ParseError

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/outputs"

pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} is absent")


@dataclass(frozen=True)
class Parses:
    kind: str
    check: Callable[[Any], None]


@dataclass(frozen=True)
class Rejected:
    kind: str
    match: str
    reason: str


@dataclass(frozen=True)
class Capture:
    parsed: dict[str, int]
    ignored_commands: frozenset[str]
    check: Callable[[dict[str, list[Any]]], None]


@dataclass(frozen=True)
class OutOfScope:
    reason: str
    rejected_by: tuple[str, ...] = field(default=())


Expectation = Parses | Rejected | Capture | OutOfScope


def expect(actual: object, expected: object) -> None:
    assert actual == expected


def body(name: str) -> str:
    """The raw output: the file without its first (SOURCE) line."""
    first, _, rest = (REFERENCE / name).read_text(encoding="utf-8").partition("\n")
    assert "SOURCE:" in first, f"{name}: first line does not name its source"
    return rest


# ---------------------------------------------------------------- checks (real content)


def _all_h100_healthy(driver: str, buses: list[str]) -> Callable[[NvidiaSmiReport], None]:
    def check(r: NvidiaSmiReport) -> None:
        assert r.driver_version == driver and r.attached_gpus == 8 and not r.partial
        assert [g.pci_bus_id for g in r.gpus] == buses
        for g in r.gpus:
            assert g.name == "NVIDIA H100 80GB HBM3" and g.uuid and g.uuid.startswith("GPU-")
            assert (g.pcie.gen_current, g.pcie.width_current) == (5, 16)
            assert g.ecc_mode == "Enabled"
            assert g.ecc_volatile.uncorrected == 0 and g.ecc_aggregate.uncorrected == 0
            assert g.remapped_rows.pending is False and g.remapped_rows.failure is False
            assert g.power_limit_w == 700.0 and g.power_draw_w is not None

    return check


def _buses(*parts: str) -> list[str]:
    return [f"00000000:{p}:00.0" for p in parts]


def _page_retirement(expected: list[tuple[int, int, bool]]) -> Callable[[NvidiaSmiReport], None]:
    def check(r: NvidiaSmiReport) -> None:
        assert r.driver_version == "535.86.10" and len(r.gpus) == 8 and not r.partial
        got = [
            (g.retired_pages.single_bit, g.retired_pages.double_bit, g.retired_pages.pending)
            for g in r.gpus
        ]
        assert got == expected
        assert all(g.name is None for g in r.gpus)  # -d PAGE_RETIREMENT prints nothing else

    return check


def _check_ibstat_ndr(r: Any) -> None:
    assert [ca.name for ca in r.cas][-1] == "mlx5_bond_0" and len(r.cas) == 9
    ib = [ca for ca in r.cas if ca.ports[0].link_layer == "InfiniBand"]
    assert len(ib) == 8 and {ca.ca_type for ca in ib} == {"MT4129"}
    assert all(
        (p.state, p.physical_state, p.rate_gbps) == ("Active", "LinkUp", 400.0)
        for ca in ib
        for p in ca.ports
    )
    assert r.cas[0].firmware == "28.41.1000" and r.cas[0].ports[0].base_lid == 128


def _check_ibstat_roce(r: Any) -> None:
    assert len(r.cas) == 12
    down = {ca.name: ca.ports[0].physical_state for ca in r.cas if ca.ports[0].state != "Active"}
    assert down == {"mlx5_11": "Polling", "mlx5_5": "Disabled"}
    assert {ca.ports[0].link_layer for ca in r.cas} == {"Ethernet"}


def _check_ibstatus(r: Any) -> None:
    assert len(r.cas) == 9
    hdr = [ca.ports[0] for ca in r.cas[:8]]
    assert all((p.state, p.rate_gbps, p.rate_detail) == ("Active", 200.0, "4X HDR") for p in hdr)
    assert r.cas[0].ports[0].base_lid == 0x33BF
    # the GUID derived from the GID is the Port GUID ibstat printed on the same host
    assert r.cas[0].ports[0].port_guid == "0x00155dfffd3411eb"
    assert "Port GUID: 0x00155dfffd3411eb" in body("ibstat_A100_failed_ibpanic_exit255.txt")
    assert r.cas[8].ports[0].link_layer == "Ethernet" and r.cas[8].ports[0].port_guid is None


def _check_lspci(r: Any) -> None:
    assert len(r.devices) == 517
    gpus = [d for d in r.devices if d.device_class == "3D controller"]
    assert [d.address for d in gpus] == [
        f"{b}:00.0" for b in ("19", "3b", "4c", "5d", "9b", "bb", "cb", "db")
    ]
    assert all((d.sta_speed_gts, d.sta_width, d.downgraded) == (32.0, 16, False) for d in gpus)
    nics = [d for d in r.devices if "ConnectX-7" in d.description]
    assert len(nics) == 8 and not any(d.downgraded for d in nics)
    # the same GPUs nvidia-smi -q lists on this host class (535.161.08 capture)
    smi = KINDS["nvidia-smi-q"](body("nvidia-smi_-q_8xH100_535.161.08.txt"))
    assert [g.pci_bus_id[4:].lower() for g in smi.gpus if g.pci_bus_id] == [
        f"0000:{d.address}" for d in gpus
    ]
    switch = next(d for d in r.devices if d.address == "17:03.0")
    assert (switch.cap_speed_gts, switch.sta_speed_gts, switch.speed_downgraded) == (32, 16, True)
    assert sum(d.downgraded for d in r.devices) == 16


def _check_nccl(
    ranks: int,
    hosts: int,
    rows: int,
    avg: float,
    large: float,
    check: str = "#wrong",
    redops: set[str | None] | None = None,
) -> Callable[[Any], None]:
    def run(r: Any) -> None:
        assert {row.redop for row in r.rows} == (redops or {"sum"})
        assert len(r.ranks) == ranks and len({x.host for x in r.ranks}) == hosts
        assert len(r.rows) == rows and r.check_column == check
        assert r.avg_busbw_gbps == avg and r.out_of_bounds_ok is True
        assert large_message_busbw(r) == large
        assert r.wrong_rows == 0

    return run


def _check_dcgm_level2(r: Any) -> None:
    assert r.schema == "dcgm4" and r.driver_version == "580.82.09"
    assert [(t.category, t.name, t.status) for t in r.tests] == [
        ("Deployment", "software", "Fail"),
        ("Hardware", "memory", "Pass"),
        ("Integration", "pcie", "Pass"),
    ]
    assert "Persistence mode for GPU 0 is disabled" in r.tests[0].results[0].warnings[0]
    assert r.tests[2].results[0].info[0] == "GPU to Host bandwidth:\t\t58.62 GB/s"


def _check_capture(r: dict[str, list[Any]]) -> None:
    """The -q and CSV sections of one capture describe the same GPU, idle and under load."""
    for text_form, csv_form in zip(r["nvidia-smi-q"], r["nvidia-smi-csv"], strict=True):
        a, b = text_form.gpus[0], csv_form.gpus[0]
        for attr in (
            "name",
            "uuid",
            "pci_bus_id",
            "vbios_version",
            "ecc_mode",
            "mig_mode",
            "pcie",
            "ecc_volatile",
            "remapped_rows",
        ):
            assert getattr(a, attr) == getattr(b, attr), attr
        assert text_form.driver_version == csv_form.driver_version == "590.48.01"
    idle, load = r["nvidia-smi-q"]
    assert load.gpus[0].power_draw_w > 3 * idle.gpus[0].power_draw_w  # gpu-burn was running
    links = r["nvlink"][0].gpus[0].links
    assert len(links) == 18 and {link.speed_gbps for link in links} == {26.562}


_READELF = (
    'readelf --dyn-syms --wide /lib/x86_64-linux-gnu/libnvidia-ml.so.1 | awk \'$4=="FUNC" && '
    "$7!=\"UND\" {print $8}' | grep ^nvml | sed 's/@@.*//' | sort -u"
)
CAPTURE_IGNORED = frozenset(
    {
        "nvidia-smi --version",
        "nvidia-smi -h",
        "nvidia-smi --help-query-gpu",
        "nvidia-smi --help-query-compute-apps",
        "nvidia-smi --help-query-accounted-apps",
        "nvidia-smi --help-query-retired-pages",
        "nvidia-smi -L",
        "nvidia-smi topo -m",
        "nvidia-smi",
        "nvidia-smi pmon -c 5",
        "nvidia-smi dmon -c 5",
        "nvidia-smi --query-compute-apps=timestamp,gpu_name,gpu_bus_id,gpu_serial,gpu_uuid,pid,"
        "process_name,used_gpu_memory --format=csv",
        "nvidia-smi --query-accounted-apps=timestamp,gpu_name,gpu_bus_id,gpu_serial,gpu_uuid,pid,"
        "gpu_util,mem_util,max_memory_usage,time --format=csv",
        "nvidia-smi --query-retired-pages=timestamp,gpu_name,gpu_bus_id,gpu_serial,gpu_uuid,"
        "retired_pages.address,retired_pages.timestamp,retired_pages.cause --format=csv",
    }
)

_CONFIG = "a configuration file, not a tool output"
_SUPERBENCH = "SuperBench analysis artefact (derived metrics/rules), not a raw tool output"

FILES: dict[str, Expectation] = {
    "aznhc_conf_nd96isr_h100_v5.conf": OutOfScope(f"Azure NHC: {_CONFIG}"),
    "aznhc_conf_nd96isr_h200_v5.conf": OutOfScope(f"Azure NHC: {_CONFIG}"),
    "aznhc_nvidia-smi_-q_-d_PAGE_RETIREMENT_bad.txt": Parses(
        "nvidia-smi-q",
        _page_retirement(
            [
                (60, 5, False),
                (2, 61, True),
                (0, 0, False),
                (6, 0, True),
                (0, 0, False),
                (20, 45, True),
                (0, 0, False),
                (8, 56, True),
            ]
        ),
    ),
    "aznhc_nvidia-smi_-q_-d_PAGE_RETIREMENT_good.txt": Parses(
        "nvidia-smi-q", _page_retirement([(0, 0, False)] * 8)
    ),
    "aznhc_nvidia-smi_nvlink_-s_bad_all_inactive.txt": Parses(
        "nvlink",
        lambda r: expect([(g.index, g.all_inactive, g.links) for g in r.gpus], [(6, True, ())]),
    ),
    "aznhc_nvidia-smi_nvlink_-s_good_A100.txt": Parses(
        "nvlink",
        lambda r: expect(
            (r.gpus[0].index, r.gpus[0].active_links, r.gpus[0].links[11].speed_gbps), (7, 12, 25.0)
        ),
    ),
    "aznhc_syslog_ib_link_flap_1dev_6flaps.txt": Parses(
        "xid",
        lambda r: expect((r.xids, r.link_flaps(), len(r.carrier)), ((), {"ib6": 6}, 12)),
    ),
    "dcgmi_diag_-r1_-j_GB10_DCGM4.2.3_reindented.json": Parses(
        "dcgmi-diag",
        lambda r: expect(
            (r.schema, r.dcgm_version, [(t.name, t.status) for t in r.tests], r.passed),
            ("dcgm4", "4.2.3", [("software", "Fail")], False),
        ),
    ),
    "dcgmi_diag_-r2_-j_GB10_DCGM4.2.3_raw.json": Parses("dcgmi-diag", _check_dcgm_level2),
    "dmesg_xid_119_gpud.txt": Parses(
        "xid",
        lambda r: expect(
            ([(x.xid, x.pci, x.severity) for x in r.xids], r.xids[0].process, r.xids[3].pid),
            ([(119, "0000:9b:00", "critical")] * 5, "nvidia-smi", "1263500"),
        ),
    ),
    "fabricmanager_log_gpud.txt": Parses(
        "xid",
        lambda r: expect(
            (
                [(e.level, e.timestamp) for e in r.fabric_manager],
                r.xids,
                "NVSwitch non-fatal error 12028" in r.fabric_manager[0].message,
            ),
            ([("ERROR", "Feb 27 2025 15:10:02")], (), True),
        ),
    ),
    "ib_write_bw_RoCE100G_DGXSpark_4qp_1MiB_duration_mode_Gbps.txt": Parses(
        "ib-write-bw",
        lambda r: expect(
            (
                r.header.qps,
                r.header.link_type,
                r.unit,
                r.rows[0].bytes,
                r.rows[0].bw_peak,
                r.rows[0].bw_average_gbps,
            ),
            (4, "Ethernet", "Gb/sec", 1048576, 0.0, 99.61),
        ),
    ),
    "ib_write_lat_RoCE_DGXSpark_possibly_abridged.txt": Parses(
        "ib-write-lat",
        lambda r: expect(
            (r.rows[0].bytes, r.rows[0].t_typical_us, r.rows[0].p999_us, r.header.link_type),
            (2, 1.85, 9.12, "Ethernet"),
        ),
    ),
    "ibstat_8x_ConnectX7_MT4129_NDR400_IB_all_active_H100.txt": Parses("ibstat", _check_ibstat_ndr),
    "ibstat_A100_failed_ibpanic_exit255.txt": Rejected(
        "ibstat",
        "ibstat reported an error, CA list incomplete",
        "ibstat exited 255 after an ibpanic: the CA listing stops before mlx5_8",
    ),
    "ibstat_H100_RoCE_some_down_polling.txt": Parses("ibstat", _check_ibstat_roce),
    "ibstatus_A100_HDR200_all_active.txt": Parses("ibstatus", _check_ibstatus),
    "imbue_health_checks_config.json": OutOfScope(
        f"imbue cluster-health: {_CONFIG}", ("dcgmi-diag",)
    ),
    "lspci_-vvv_HGX_H100_8xCX7.txt": Parses("lspci", _check_lspci),
    "nccl_all_reduce_perf_1node_8xH100_DGX_NVLS.txt": Parses(
        "nccl", _check_nccl(8, 1, 32, 159.151, 467.85)
    ),
    "nccl_all_reduce_perf_2node_16xH100_GCP-A3mega_TCPXO.txt": Parses(
        "nccl", _check_nccl(16, 2, 31, 70.742, 298.82)
    ),
    "nvidia-smi_-q_-x_A100-SXM4-80GB_x4_MIG_535.54.03.xml": Parses(
        "nvidia-smi-xml",
        lambda r: expect(
            (
                r.attached_gpus,
                len(r.gpus),
                r.partial,
                r.gpus[0].mig_mode,
                r.gpus[0].power_draw_w,
                r.gpus[0].ecc_aggregate.uncorrected,
            ),
            (4, 1, True, "Enabled", 67.03, 0),
        ),
    ),
    "nvidia-smi_-q_-x_schema_v13_RTX4000SFF_595.84.xml": Parses(
        "nvidia-smi-xml",
        lambda r: expect(
            (
                r.driver_version,
                r.gpus[0].ecc_mode,
                r.gpus[0].pcie.gen_current,
                r.gpus[0].pcie.gen_max,
                r.gpus[0].remapped_rows.pending,
                r.gpus[0].power_draw_w,
                r.gpus[0].ecc_volatile.uncorrected,
            ),
            ("595.84", "Disabled", 1, 4, False, 8.81, None),
        ),
    ),
    "nvidia-smi_-q_8xH100_535.161.08.txt": Parses(
        "nvidia-smi-q",
        _all_h100_healthy("535.161.08", _buses("19", "3B", "4C", "5D", "9B", "BB", "CB", "DB")),
    ),
    "nvidia-smi_-q_8xH100_535.183.01.txt": Parses(
        "nvidia-smi-q",
        _all_h100_healthy("535.183.01", _buses("53", "64", "75", "86", "97", "A8", "B9", "CA")),
    ),
    "nvidia-smi_-q_8xH100_565.57.01.txt": Parses(
        "nvidia-smi-q",
        _all_h100_healthy("565.57.01", _buses("18", "2A", "3A", "5D", "9A", "AB", "BA", "DB")),
    ),
    "nvidia-smi_-q_H100_535.183.01_truncated_invalid.txt": Rejected(
        "nvidia-smi-q",
        "truncated: GPU 00000000:53:00.0 section ends before 'Processes'",
        "cut inside the first of 8 GPU sections (and with garbled 'Invalid ...' keys)",
    ),
    "nvidia-smi_default_table_550.90.07.txt": OutOfScope(
        "the default nvidia-smi table is a human summary; probes read -q, -q -x, --query-gpu",
        ("nvidia-smi-q", "nvidia-smi-xml", "nvidia-smi-csv"),
    ),
    "nvidia-smi_default_table_8xH100_565.57.01.txt": OutOfScope(
        "the default nvidia-smi table is a human summary; probes read -q, -q -x, --query-gpu",
        ("nvidia-smi-q", "nvidia-smi-xml", "nvidia-smi-csv"),
    ),
    "nvidia-smi_multi_capture_H100_590.48.01_query-gpu_csv_topo_nvlink_-q.txt": Capture(
        {"nvidia-smi-q": 2, "nvidia-smi-csv": 2, "nvlink": 1},
        CAPTURE_IGNORED | {_READELF},
        _check_capture,
    ),
    "nvidia-smi_multi_capture_H200_590.48.01.txt": Capture(
        {"nvidia-smi-q": 2, "nvidia-smi-csv": 2, "nvlink": 1},
        CAPTURE_IGNORED,
        _check_capture,
    ),
    "nvidia-smi_nvlink_--status_8xA100.txt": Parses(
        "nvlink",
        lambda r: expect(
            (
                [(g.index, g.active_links) for g in r.gpus],
                {link.speed_gbps for g in r.gpus for link in g.links},
            ),
            ([(i, 12) for i in range(8)], {25.0}),
        ),
    ),
    "superbench_baseline_example.json": OutOfScope(_SUPERBENCH, ("dcgmi-diag",)),
    "superbench_diagnosis_summary.jsonl": OutOfScope(_SUPERBENCH, ("dcgmi-diag",)),
    "superbench_diagnosis_summary.md": OutOfScope(_SUPERBENCH),
    "superbench_gpu_burn_8xA100.txt": OutOfScope(
        "gpu-burn log: no gpu-burn probe (GPU stress is covered by dcgmi diag -r 3/4)"
    ),
    "superbench_ib_write_bw_loopback_8M.txt": Parses(
        "ib-write-bw",
        lambda r: expect(
            (len(r.rows), r.duplicate_rows, r.unit, r.rows[0].bw_average_gbps),
            (1, 1, "MB/sec", 201.802),
        ),
    ),
    "superbench_ib_write_bw_loopback_all_sizes.txt": Parses(
        "ib-write-bw",
        lambda r: expect(
            (
                [row.bytes for row in r.rows],
                r.duplicate_rows,
                r.rows[-1].bw_average,
                r.header.device,
            ),
            ([2**n for n in range(1, 24)], 1, 23240.68, "ib0"),
        ),
    ),
    "superbench_ibnetdiscover_faked_HDR.txt": OutOfScope(
        "ibnetdiscover topology dump: read by `gpuctl fabric verify`, not a burn-in probe",
        ("ibstat", "ibstatus"),
    ),
    "superbench_ibstat_guid_list_NOT_raw_ibstat.txt": Rejected(
        "ibstat",
        "line 1 comes before any CA line",
        "a hostname/GUID list SuperBench derived from ibstat, not ibstat's own output",
    ),
    "superbench_nccl_allreduce_8xA100_single_node.txt": Parses(
        "nccl", _check_nccl(8, 1, 34, 68.4048, 230.29, check="error")
    ),
    "superbench_nccl_alltoall.txt": Parses(
        "nccl", _check_nccl(8, 1, 34, 58.6481, 219.81, check="error", redops={None})
    ),
    "superbench_results-summary_raw.jsonl": OutOfScope(_SUPERBENCH, ("dcgmi-diag",)),
    "superbench_rules_example.yaml": OutOfScope(_SUPERBENCH),
    "superbench_traffic_patterns_mpi_pattern.txt": OutOfScope(
        "SuperBench MPI traffic-pattern host list, not a tool output", ("nccl",)
    ),
}


def test_every_reference_file_is_classified() -> None:
    present = {p.name for p in REFERENCE.iterdir() if p.is_file()}
    unclassified = sorted(present - set(FILES))
    assert not unclassified, f"classify these reference files in FILES: {unclassified}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_reference_file(name: str) -> None:
    if not (REFERENCE / name).exists():
        pytest.skip(f"{name} is no longer in the reference folder")
    text = body(name)
    expectation = FILES[name]
    if isinstance(expectation, Parses):
        result = KINDS[expectation.kind](text)
        expectation.check(result)
        assert to_json(result)
    elif isinstance(expectation, Rejected):
        with pytest.raises(ParseError, match=re.escape(expectation.match)):
            KINDS[expectation.kind](text)
    elif isinstance(expectation, Capture):
        results: dict[str, list[Any]] = {}
        ignored: set[str] = set()
        for section in split_capture(text):
            if section.command is None:
                continue
            kind = kind_for_command(section.command)
            if kind is None:
                ignored.add(section.command)
                continue
            results.setdefault(kind, []).append(KINDS[kind](section.body))
        assert {k: len(v) for k, v in results.items()} == expectation.parsed
        assert ignored == expectation.ignored_commands
        expectation.check(results)
    else:
        assert expectation.reason
        for kind in expectation.rejected_by:
            with pytest.raises(ParseError):
                KINDS[kind](text)
