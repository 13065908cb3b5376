"""``gpuctl provision site`` end to end against a lab: preflight, image (Redfish), base
(Ansible) on every host, state checked with testinfra over SSH (host keys verified),
idempotence, a run killed in the middle of base resumed with --resume, and a host whose BMC
refuses the credentials failing with a clear reason while the others finish.

The lab's hosts carry the plan's names (lab-gpu-01..04) under a lab site name of their own;
the lab is always taken down, also when a test fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from provision_labspec import provision_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "inventory" / "sites" / "lab"
HOSTS = [f"lab-gpu-{i:02d}" for i in range(1, 5)]


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    tools = ("ip", "ibsim", "opensm", "nsenter", "ansible-playbook")
    missing = [t for t in tools if shutil.which(t) is None]
    if not os.path.exists("/usr/sbin/sshd"):
        missing.append("sshd")
    if importlib.util.find_spec("sushy_tools") is None:
        missing.append("sushy-tools")
    if importlib.util.find_spec("testinfra") is None:
        missing.append("pytest-testinfra")
    return f"lab tools missing: {', '.join(missing)}" if missing else None


pytestmark = [pytest.mark.lab, pytest.mark.skipif(_unavailable() is not None,
                                                  reason=str(_unavailable()))]


@dataclass
class Lab:
    root: Path
    addresses: dict[str, str]
    tmp: Path


@pytest.fixture(scope="module")
def lab_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from provision import lab

    tmp = tmp_path_factory.mktemp("prov")
    name = f"pv{os.getpid() % 100000}"
    root = tmp / name
    spec = provision_spec(name, HOSTS, seed=os.getpid())
    try:
        state = lab.up(spec, root)
        yield Lab(root, {h.name: h.address.split("/")[0] for h in state.hosts.values()}, tmp)
    finally:
        lab.down(name, root)


def gpuctl(lab: Lab, *args: str, store: str = "runs.db", timeout: float = 900
           ) -> tuple[int, dict[str, Any], str]:
    argv = [sys.executable, "-m", "provision.cli.main", "provision", "site", str(SITE),
            "--lab-dir", str(lab.root), "--store", str(lab.tmp / store), "--format", "json",
            *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          check=False)
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except ValueError:
        data = {}
    return proc.returncode, data, proc.stderr


def statuses(data: dict[str, Any], phase: str) -> dict[str, str]:
    return {r["host"]: r["status"] for r in data.get("results", []) if r["phase"] == phase}


def test_dry_run_on_fresh_hosts_changes_nothing(lab_site: Lab) -> None:
    rc, data, err = gpuctl(lab_site, "--phases", "preflight,image,base", "--dry-run",
                           store="dry.db")
    assert rc == 0, err[-3000:]
    assert set(statuses(data, "image").values()) == {"skipped"}
    assert "Boot = Pxe, Once" in statuses_detail(data, "image")
    assert set(statuses(data, "base").values()) == {"changed"}  # would change
    assert "check mode" in statuses_detail(data, "base")
    import testinfra

    host = testinfra.get_host(f"ssh://root@{lab_site.addresses['lab-gpu-01']}",
                              ssh_config=str(lab_site.root / "ssh_config"))
    assert not host.file("/etc/security/limits.d/90-gpuctl-rdma.conf").exists
    assert not host.user("gpuadmin").exists


def test_preflight_image_base_succeed_on_every_host(lab_site: Lab) -> None:
    started = time.monotonic()
    rc, data, err = gpuctl(lab_site, "--phases", "preflight,image,base")
    print(f"provision preflight,image,base on {len(HOSTS)} hosts: "
          f"{time.monotonic() - started:.1f}s")
    assert rc == 0, err[-3000:]
    for phase in ("preflight", "image", "base"):
        assert set(statuses(data, phase).values()) <= {"ok", "changed"}, data
        assert sorted(statuses(data, phase)) == HOSTS
    assert "lab: nothing was reinstalled" in statuses_detail(data, "image")


def statuses_detail(data: dict[str, Any], phase: str) -> str:
    return " ".join(r["detail"] for r in data["results"] if r["phase"] == phase)


def test_state_on_the_hosts(lab_site: Lab) -> None:
    import testinfra

    for name in HOSTS:
        host = testinfra.get_host(f"ssh://root@{lab_site.addresses[name]}",
                                  ssh_config=str(lab_site.root / "ssh_config"))
        assert host.file("/etc/hostname").content_string.strip() == name
        hosts = host.file("/etc/hosts").content_string
        assert all(other in hosts for other in HOSTS)
        limits = host.file("/etc/security/limits.d/90-gpuctl-rdma.conf").content_string
        assert "memlock\tunlimited" in limits
        assert "vm.nr_hugepages = 1024" in host.file(
            "/etc/sysctl.d/90-gpuctl-rdma.conf").content_string
        assert "iommu=pt" in host.file("/etc/default/grub.d/60-gpuctl.cfg").content_string
        assert host.file("/etc/chrony/chrony.conf").contains("^server ")
        netplan = host.file("/etc/netplan/60-gpuctl.yaml")
        assert netplan.mode == 0o600 and "to: default" in netplan.content_string  # in-band
        assert "infiniband-mode" not in netplan.content_string  # IPoIB: the ipoib role's
        assert host.user("gpuadmin").exists
        # the stack roles pin what they install; base pins nothing of theirs
        assert not host.file("/etc/apt/preferences.d/gpuctl-pins").exists


def test_second_run_changes_nothing(lab_site: Lab) -> None:
    rc, data, err = gpuctl(lab_site, "--phases", "base")
    assert rc == 0, err[-3000:]
    changed = {r["host"]: r["stats"].get("changed") for r in data["results"]
               if r["phase"] == "base"}
    assert changed == dict.fromkeys(HOSTS, 0)


def test_killed_in_base_resumes(lab_site: Lab) -> None:
    db = lab_site.tmp / "kill.db"
    argv = [sys.executable, "-m", "provision.cli.main", "provision", "site", str(SITE),
            "--lab-dir", str(lab_site.root), "--store", str(db), "--phases", "image,base"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not _phase_running(db, "base"):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "base never started"
            time.sleep(0.5)
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert rc == 130
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    rc, data, err = gpuctl(lab_site, "--phases", "image,base", "--resume", store="kill.db")
    assert rc == 0, err[-3000:]
    assert statuses(data, "image") == {}  # done before the kill: skipped
    assert sorted(statuses(data, "base")) == HOSTS
    assert "--resume skips 4 host(s)" in err


def _phase_running(db: Path, phase: str) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("SELECT status FROM phase_results WHERE phase=?",
                               (phase,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == "running"


def test_refused_bmc_credentials_fail_one_host_only(lab_site: Lab) -> None:
    creds = lab_site.tmp / "bmc-override.env"
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("GPUCTL_BMC_PASSWORD[lab-gpu-02]=not-the-password\n")
    rc, data, err = gpuctl(lab_site, "--phases", "preflight,image", "--bmc-credentials",
                           str(creds), store="creds.db")
    assert rc == 1
    pre = statuses(data, "preflight")
    assert pre["lab-gpu-02"] == "failed"
    detail = next(r["detail"] for r in data["results"] if r["host"] == "lab-gpu-02")
    assert "bmc of lab-gpu-02" in detail and "401 Unauthorized" in detail
    assert "GPUCTL_BMC_USER/GPUCTL_BMC_PASSWORD" in detail
    assert "not-the-password" not in err + json.dumps(data)
    others = [h for h in HOSTS if h != "lab-gpu-02"]
    assert all(statuses(data, "image")[h] == "changed" for h in others)
    assert "lab-gpu-02" not in statuses(data, "image")
