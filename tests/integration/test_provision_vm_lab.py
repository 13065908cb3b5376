"""Imaging for real, end to end (issue 18): ``gpuctl lab up`` on a copy of inventory/sites/lab-vm
(two libvirt TCG VMs with blank disks, one per rack, rack a02 behind a router namespace and a
DHCP relay; the provisioning host a namespace host at the plan's services address) ->
``gpuctl image build`` (the cached Debian test image) + ``gpuctl image seed`` (host keys made
before imaging) -> ``gpuctl provision site --phases preflight,image,base``: the image phase
deploys the boot services (Kea, TFTP, nginx) itself, PXE-boots both VMs in parallel through
Redfish (sushy-emulator's libvirt driver), follows each boot in the lease file and access log,
the deploy ramdisk writes and verifies the image, the VMs boot from their disks, cloud-init
applies the seed, SSH verifies the pre-generated host key, base runs over Ansible. Checked on
the VMs over SSH (strict host key checking against SITE/.gpuctl/known_hosts only): root on
/dev/vda, grown to the disk by cloud-init, hostname, planned address, cloud-init done, the
served host key the pre-generated one, /etc/gpuctl/image.json's digest. A second run re-images
nothing and changes nothing. Then a fault: rack a02's DHCP relay stopped, ``--reimage
--limit labvm-gpu-02`` with a 30 s DHCP bound: labvm-gpu-02 fails naming the DHCP step (only
that VM is imaged again: a third full TCG imaging would add minutes and prove nothing the
first run did not; one host failing while the others are imaged is tested in
tests/integration/test_provision_lab.py). Times go to the output (``-s``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_deploy_ramdisk_lab import CACHE, PACKAGES  # noqa: E402

from provision.image import disk  # noqa: E402
from provision.image.store import list_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "inventory" / "sites" / "lab-vm"
VMS = {"labvm-gpu-01": "10.214.0.12", "labvm-gpu-02": "10.214.0.140"}
MAC_02 = "52:54:00:4c:02:01"
DHCP_BOUND_S = 30


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    tools = ["virsh", "libvirtd", "virtlogd", "qemu-img", "qemu-system-x86_64", "dhcrelay",
             "mmdebstrap", "kea-dhcp4", "in.tftpd", "nginx", "ssh", "ssh-keygen", *disk.TOOLS]
    missing = [t for t in tools if shutil.which(t) is None and
               not Path("/usr/sbin", t).exists()]
    if importlib.util.find_spec("libvirt") is None:
        missing.append("libvirt-python")
    return f"missing (scripts/setup.sh installs them): {', '.join(missing)}" if missing else None


pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]


def _gpuctl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          check=False)


def _provision(site: Path, lab: Path, *args: str, access: Path | None = None,
               limit: str = "group=gpu") -> tuple[int, dict[str, Any], str]:
    """provision site on the VMs of ``limit`` (default both; the services host is the boot
    services' host), with the lab's access file or ``access``."""
    where = ["--access", str(access)] if access else ["--lab-dir", str(lab)]
    proc = _gpuctl("provision", "site", str(site), *where, "--store", str(site / "runs.db"),
                   "--format", "json", "--limit", limit, *args, timeout=900)
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except ValueError:
        data = {}
    return proc.returncode, data, proc.stdout[-4000:] + proc.stderr[-4000:]


def _results(data: dict[str, Any], phase: str) -> dict[str, tuple[str, str]]:
    return {r["host"]: (r["status"], r.get("detail", "")) for r in data.get("results", [])
            if r["phase"] == phase}


def _ssh(site: Path, lab: Path, host: str, *argv: str) -> str:
    """Run on a VM as root, its host key checked strictly against the keys gpuctl image
    seed pre-generated (and nothing else)."""
    res = subprocess.run(
        ["ssh", "-i", str(lab / "admin_ed25519"), "-o", "IdentitiesOnly=yes",
         "-o", "StrictHostKeyChecking=yes", "-o",
         f"UserKnownHostsFile={site / '.gpuctl' / 'known_hosts'}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=10", f"root@{VMS[host]}", *argv],
        capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, (host, argv, res.stdout, res.stderr)
    return res.stdout


def _consoles(lab: Path) -> str:
    out = []
    for log in sorted((lab / "vms").glob("*/console.log")):
        out.append(f"--- {log}:\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(out)


@pytest.fixture(scope="module")
def vm_lab() -> Iterator[tuple[Path, Path]]:
    # a short path: the run directory under SITE/.gpuctl holds Ansible's SSH control
    # sockets, and a socket path over 108 bytes makes the provisioning host "unreachable"
    tmp = Path(tempfile.mkdtemp(prefix="gv", dir="/tmp"))
    site, lab = tmp / "lab-vm", tmp / "lab"
    shutil.copytree(SITE, site, ignore=shutil.ignore_patterns(".gpuctl", "generated"))
    started = time.monotonic()
    try:
        res = _gpuctl("lab", "up", str(site), "--lab-dir", str(lab))
        assert res.returncode == 0, res.stdout + res.stderr
        print(f"\nlab up: {time.monotonic() - started:.1f} s")
        yield site, lab
    finally:
        down = _gpuctl("lab", "down", str(site), "--lab-dir", str(lab))
        print(f"lab down: rc {down.returncode} {down.stderr[-500:]}")
        shutil.rmtree(tmp, ignore_errors=True)


def test_provision_images_two_vms_then_a_dhcp_fault(vm_lab: tuple[Path, Path]) -> None:
    site, lab = vm_lab
    (site / "admin_keys").mkdir(exist_ok=True)
    shutil.copy(lab / "admin_ed25519.pub", site / "admin_keys" / "lab.pub")
    t0 = time.monotonic()
    res = _gpuctl("image", "build", str(site), "--group", "gpu", "--images", str(CACHE),
                  timeout=1800)
    assert res.returncode == 0, res.stdout + res.stderr
    res = _gpuctl("image", "seed", str(site), "--group", "gpu", "--images", str(CACHE))
    assert res.returncode == 0, res.stdout + res.stderr
    [rec] = [r for r in list_images(CACHE) if r.recipe["packages"] == sorted(PACKAGES)
             and r.name == "vmlab"][-1:]
    print(f"image build (cached) + seed: {time.monotonic() - t0:.1f} s")
    lab_known = (lab / "known_hosts").read_text()
    assert not any(a in lab_known for a in VMS.values())  # only the seeded keys can verify

    t0 = time.monotonic()
    rc, data, tail = _provision(site, lab, "--phases", "preflight,image,base")
    first_s = time.monotonic() - t0
    print(f"provision preflight,image,base (both VMs imaged): {first_s:.1f} s")
    image = _results(data, "image")
    for host, (status, detail) in image.items():
        print(f"  {host}: image {status}: {detail}")
    assert rc == 0, tail + _consoles(lab)
    assert set(image) == set(VMS)
    for host, (status, detail) in image.items():
        assert status == "changed", (host, detail)
        assert rec.digest in detail and "SSH host key verified" in detail
    assert {h: s for h, (s, _) in _results(data, "base").items()} == \
        dict.fromkeys(VMS, "changed")
    known = (site / ".gpuctl" / "known_hosts").read_text()
    for host, address in VMS.items():
        assert _ssh(site, lab, host, "findmnt", "-n", "-o", "SOURCE", "/").strip() \
            .startswith("/dev/vda")
        assert _ssh(site, lab, host, "hostname").strip() == host
        assert f"inet {address}/" in _ssh(site, lab, host, "ip", "-4", "-o", "addr", "show")
        deployed = json.loads(_ssh(site, lab, host, "cat", "/etc/gpuctl/image.json"))
        assert deployed["image_digest"] == rec.digest and deployed["host"] == host
        status = _ssh(site, lab, host, "cloud-init", "status", "--long")
        assert "status: done" in status, status
        # the host key the node serves is the one gpuctl made before imaging
        served = _ssh(site, lab, host, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
        assert served in [ln.split()[1:3] for ln in known.splitlines()
                          if f"{host},{address}" in ln.split()[:1]]
        # cloud-init grew the shrunk root to the VM's disk on first boot
        root_kib = int(_ssh(site, lab, host, "df", "--output=size", "-k", "/").split()[-1])
        disk_bytes = int(rec.disk["size"])
        assert root_kib > 2 * (disk_bytes >> 10), (root_kib, disk_bytes)

    t0 = time.monotonic()
    rc, data, tail = _provision(site, lab, "--phases", "preflight,image,base")
    print(f"second run: {time.monotonic() - t0:.1f} s")
    assert rc == 0, tail
    for host, (status, detail) in _results(data, "image").items():
        assert status == "ok" and "already running it" in detail, (host, detail)
    assert {h: s for h, (s, _) in _results(data, "base").items()} == dict.fromkeys(VMS, "ok")

    # the fault: rack a02's relay stopped, the DHCP step bounded at DHCP_BOUND_S
    state = json.loads((lab / "state.json").read_text())
    relay = state["racks"]["a02"]["relay"]["pid"]
    os.kill(relay, signal.SIGTERM)
    access = yaml.safe_load((lab / "access.yaml").read_text())
    access.setdefault("timeouts", {})["dhcp_s"] = DHCP_BOUND_S
    (lab / "access-fault.yaml").write_text(yaml.safe_dump(access, sort_keys=False))
    t0 = time.monotonic()
    rc, data, tail = _provision(site, lab, "--phases", "image", "--reimage",
                                access=lab / "access-fault.yaml", limit="labvm-gpu-02")
    print(f"fault run (--reimage labvm-gpu-02, a02 relay down): {time.monotonic() - t0:.1f} s")
    image = _results(data, "image")
    for host, (status, detail) in image.items():
        print(f"  {host}: image {status}: {detail}")
    assert rc == 1, tail
    assert image == {"labvm-gpu-02": (
        "failed", f"image vmlab: no DHCP lease for {MAC_02} (labvm-gpu-02) within "
                  f"{DHCP_BOUND_S} s")}
