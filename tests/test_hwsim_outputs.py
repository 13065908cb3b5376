"""Hardware simulator outputs: well-formed in each tool's format, and each fault changes
exactly the outputs it should. Format checks run the generated wrappers as subprocesses; the
fault matrix runs the same entry points in-process (``LocalSim.call``) to stay fast."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from provision.lab.hwsim import LABEL, default_personality
from provision.lab.hwsim.local import LocalSim

HOSTS = ("gpu-n01", "gpu-n02")
CSV_FIELDS = "index,name,memory.total,ecc.errors.uncorrected.volatile.total,remapped_rows.pending"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> LocalSim:
    return LocalSim.create(
        tmp_path_factory.mktemp("hwsim"),
        [default_personality(h) for h in HOSTS],
        epoch=1_790_000_000,
    )


@pytest.fixture(autouse=True)
def _healthy(sim: LocalSim) -> None:
    sim.clear()


def out(sim: LocalSim, *argv: str, host: str = "gpu-n01", rc: int = 0) -> str:
    proc = sim.run(host, argv)
    assert proc.returncode == rc, proc.stderr
    return proc.stdout


def test_nvidia_smi_xml_parses_and_is_labelled(sim: LocalSim) -> None:
    text = out(sim, "nvidia-smi", "-q", "-x")
    assert f"<!-- {LABEL} -->" in text
    root = ET.fromstring(text)
    assert root.tag == "nvidia_smi_log" and root.findtext("attached_gpus") == "8"
    gpus = root.findall("gpu")
    assert [g.findtext("product_name") for g in gpus] == ["NVIDIA H100 80GB HBM3"] * 8
    assert gpus[1].get("id") == gpus[1].findtext("pci/pci_bus_id") == "00000000:2A:00.0"
    assert gpus[0].findtext("fb_memory_usage/total") == "81559 MiB"
    assert gpus[0].findtext("ecc_errors/volatile/dram_uncorrectable") == "0"
    assert out(sim, "nvidia-smi", "-q", "-x") == text  # deterministic (timestamp pinned)


def test_nvidia_smi_csv_header_units_and_noheader(sim: LocalSim) -> None:
    rows = out(sim, "nvidia-smi", f"--query-gpu={CSV_FIELDS},gpu_name", "--format=csv").splitlines()
    assert rows[0] == (
        "index, name, memory.total [MiB], ecc.errors.uncorrected.volatile.total, "
        "remapped_rows.pending, name"
    )
    assert rows[1] == "0, NVIDIA H100 80GB HBM3, 81559 MiB, 0, No, NVIDIA H100 80GB HBM3"
    assert len(rows) == 9
    bare = out(sim, "nvidia-smi", f"--query-gpu={CSV_FIELDS}", "--format=csv,noheader,nounits")
    assert bare.splitlines()[7] == "7, NVIDIA H100 80GB HBM3, 81559, 0, No"
    proc = sim.run("gpu-n01", ["nvidia-smi", "--query-gpu=index,warp_factor", "--format=csv"])
    assert proc.returncode == 2 and 'Field "warp_factor" is not a valid field' in proc.stderr


def test_nvidia_smi_list_nvlink_version_and_bad_args(sim: LocalSim) -> None:
    listing = out(sim, "nvidia-smi", "-L").splitlines()
    assert len(listing) == 8 and listing[3].startswith("GPU 3: NVIDIA H100 80GB HBM3 (UUID: GPU-")
    links = out(sim, "nvidia-smi", "nvlink", "-s", "-i", "0").splitlines()
    assert links[0] == listing[0] and len(links) == 19
    assert links[18] == "\t Link 17: 26.562 GB/s"
    assert LABEL in out(sim, "nvidia-smi", "--version")
    table = out(sim, "nvidia-smi")
    assert "| NVIDIA-SMI 535.161.08" in table and "No running processes found" in table
    assert {len(line) for line in table.splitlines()[1:12]} == {91}
    proc = sim.run("gpu-n01", ["nvidia-smi", "--make-it-faster"])
    assert proc.returncode == 2 and "Invalid combination of input arguments" in proc.stderr
    proc = sim.run("gpu-n99", ["nvidia-smi", "-L"])
    assert proc.returncode == 9 and "couldn't communicate with the NVIDIA driver" in proc.stderr


def test_dcgmi_diag_json_levels(sim: LocalSim) -> None:
    names = {}
    for level in ("1", "2", "3", "4"):
        doc = json.loads(out(sim, "dcgmi", "diag", "-r", level, "-j"))
        assert doc["metadata"]["simulator"] == LABEL
        assert doc["metadata"]["Driver Version Detected"] == "535.161.08"
        tests = [t for c in doc["DCGM Diagnostic"]["test_categories"] for t in c["tests"]]
        assert all(t["test_summary"]["status"] == "Pass" for t in tests)
        assert all(len(t["results"]) == 8 for t in tests)
        names[level] = [t["name"] for t in tests]
    assert names["1"] == ["software"]
    assert set(names["2"]) == {"software", "memory", "pcie"}
    assert {"targeted_stress", "memory_bandwidth"} <= set(names["3"])
    assert {"memtest", "pulse_test"} <= set(names["4"])
    assert "Successfully ran diagnostic" in out(sim, "dcgmi", "diag", "-r", "1")


def test_dmesg_shows_xid_in_kernel_log_formats(sim: LocalSim) -> None:
    assert "NVRM: Xid" not in out(sim, "dmesg")
    sim.fault("gpu-n01", "xid", gpu=4, xid=79)
    raw = out(sim, "dmesg").splitlines()
    assert LABEL in raw[0]
    assert raw[-1].startswith("[") and raw[-1].endswith(
        "NVRM: Xid (PCI:0000:9a:00): 79, pid='<unknown>', name=<unknown>, "
        "GPU has fallen off the bus."
    )
    iso = out(sim, "dmesg", "--time-format=iso").splitlines()[-1]
    assert iso.split(" ", 1)[0][:4].isdigit() and "Xid (PCI:0000:9a:00): 79" in iso
    assert out(sim, "dmesg", "-T").splitlines()[-1].startswith("[")
    assert "NVRM: Xid" not in out(sim, "dmesg", host="gpu-n02")


# command -> argv; FAULTS: kind -> (params, the commands whose output it must change)
COMMANDS = {
    "xml": ["nvidia-smi", "-q", "-x"],
    "csv": ["nvidia-smi", f"--query-gpu={CSV_FIELDS}", "--format=csv"],
    "nvlink": ["nvidia-smi", "nvlink", "--status"],
    "dcgmi": ["dcgmi", "diag", "-r", "2", "-j"],
    "dmesg": ["dmesg", "-t"],
    "ibstat": ["ibstat"],
    "nccl": ["all_reduce_perf", "-b", "1M", "-e", "1G", "-f", "8", "-g", "8"],
    "mpirun": [
        "mpirun",
        "-np",
        "16",
        "--host",
        "gpu-n01:8,gpu-n02:8",
        "all_reduce_perf",
        "-b",
        "1M",
        "-e",
        "1G",
        "-f",
        "8",
        "-g",
        "1",
    ],
}
FAULTS: dict[str, tuple[dict[str, int | str], set[str]]] = {
    "gpu-missing": ({"gpu": 5}, {"xml", "csv", "nvlink", "dcgmi", "nccl", "mpirun"}),
    "hca-down": ({"hca": 2}, {"ibstat", "mpirun"}),
    "hca-200g": ({"hca": 1}, {"ibstat", "mpirun"}),
    "slow-nccl": ({}, {"nccl", "mpirun"}),
    "xid": ({"gpu": 0, "xid": 79}, {"dmesg"}),
    "ecc": ({"gpu": 6}, {"xml", "csv"}),
    "dcgm-fail": ({"gpu": 1}, {"dcgmi"}),
    "nvlink-down": ({"gpu": 3}, {"nvlink", "nccl", "mpirun"}),
}


def _snapshot(sim: LocalSim) -> dict[str, tuple[int, str]]:
    results = {}
    for name, argv in COMMANDS.items():
        code, stdout, _ = sim.call("gpu-n01", argv)
        results[name] = (code, stdout)
    return results


@pytest.fixture(scope="module")
def baseline(sim: LocalSim) -> dict[str, tuple[int, str]]:
    sim.clear()
    return _snapshot(sim)


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_each_fault_changes_exactly_its_outputs(
    sim: LocalSim, kind: str, baseline: dict[str, tuple[int, str]]
) -> None:
    params, expected = FAULTS[kind]
    sim.fault("gpu-n01", kind, **params)
    after = _snapshot(sim)
    changed = {name for name in COMMANDS if after[name] != baseline[name]}
    assert changed == expected
    sim.clear()
    assert _snapshot(sim) == baseline  # clearing restores a healthy node


def test_fault_details(sim: LocalSim) -> None:
    sim.fault("gpu-n01", "gpu-missing", gpu=5)
    sim.fault("gpu-n01", "ecc", gpu=6)
    sim.fault("gpu-n01", "nvlink-down", gpu=3)
    sim.fault("gpu-n01", "dcgm-fail", gpu=1)
    root = ET.fromstring(out(sim, "nvidia-smi", "-q", "-x"))
    assert root.findtext("attached_gpus") == "7"
    buses = [g.get("id") for g in root.findall("gpu")]
    assert "00000000:AB:00.0" not in buses and len(buses) == 7
    bad = root.findall("gpu")[5]  # slot 6 is index 5 once slot 5 is gone
    assert bad.get("id") == "00000000:BA:00.0"
    assert int(bad.findtext("ecc_errors/volatile/dram_uncorrectable") or 0) > 0
    assert bad.findtext("remapped_rows/remapped_row_pending") == "Yes"
    nvlink = out(sim, "nvidia-smi", "nvlink", "-s").split("GPU ")
    assert "all links are inactive" in nvlink[4] and "inactive" not in nvlink[3]
    proc = sim.run("gpu-n01", ["dcgmi", "diag", "-r", "2", "-j"])
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    failed = [
        (t["name"], r["entity_id"])
        for c in doc["DCGM Diagnostic"]["test_categories"]
        for t in c["tests"]
        for r in t["results"]
        if r["status"] == "Fail"
    ]
    assert failed == [("memory", 1)]
