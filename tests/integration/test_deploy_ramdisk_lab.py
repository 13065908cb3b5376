"""The deploy ramdisk for real: a QEMU (TCG) machine with a blank virtio disk boots the
kernel and initrd of a real image (built with mmdebstrap once and cached, keyed by its
package list) plus gpuctl's deploy.cpio.gz, gets an address by DHCP, fetches disk.img over
HTTP, writes it, checks its sha256, fetches the node's seed into the written root's
/var/lib/cloud/seed/nocloud (and points its cloud-init there), reports to /deploy/<host>/done and powers off; started again from its disk, it boots the
written image's kernel, which mounts its root from the VM's disk. With a wrong digest it reports
failed/checksum-mismatch, which the image phase words as "image checksum mismatch". The disk
image is a small one made by the same code as the real one (test_provision_vm_lab.py writes
the real one and boots it to SSH); its boot partition carries the image's real kernel and initrd.
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision.cli.main import cli
from provision.image import disk, observe, ramdisk
from provision.image.store import list_images

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("GPUCTL_IMAGE_CACHE", "/var/cache/gpuctl-images"))
"""Images built by lab tests, reused while their recipe (package list) is the same."""
PACKAGES = ["systemd-sysv", "openssh-server", "python3", "cloud-init", "ifupdown",
            "isc-dhcp-client", "linux-image-cloud-amd64", "e2fsprogs", "udev", "cloud-guest-utils"]
"""A Debian server image: systemd, sshd, python3 for Ansible, cloud-init (growpart from
cloud-guest-utils grows the shrunk root on first boot), the cloud kernel."""
MIRROR = os.environ.get("GPUCTL_TEST_MIRROR", "http://deb.debian.org/debian")


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    tools = ["qemu-system-x86_64", "qemu-img", "mmdebstrap", "busybox", "debugfs", *disk.TOOLS]
    missing = [t for t in tools if shutil.which(t) is None]
    return f"missing (scripts/setup.sh installs them): {', '.join(missing)}" if missing else None


pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a bootable Debian image (built once, then cached)."""
    site = tmp_path_factory.mktemp("site")
    data = yaml.safe_load((ROOT / "inventory/sites/lab/site.yaml").read_text())
    data["images"] = [{"name": "vmlab", "distribution": "debian", "suite": "bookworm",
                       "mirror": MIRROR, "variant": "minbase", "packages": PACKAGES}]
    data["node_groups"][0]["image"] = "vmlab"
    (site / "site.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    res = CliRunner().invoke(cli, ["image", "build", str(site), "--images", str(CACHE)])
    assert res.exit_code == 0, res.output
    [rec] = [r for r in list_images(CACHE) if r.name == "vmlab"
             and r.recipe["packages"] == sorted(PACKAGES)][-1:]
    assert set(rec.boot) == {"vmlinuz", "initrd.img"}
    return rec.path


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files of the served folder; POSTs answered 204; nginx's gpuctl log format."""

    log_path: Path

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(204)
        self.end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        with self.log_path.open("a") as f:
            f.write(f'{self.client_address[0]} [{stamp}] "{self.requestline}" {code} '
                    f'{size if size != "-" else 0}\n')

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def served(tmp_path: Path, image: Path) -> Iterator[tuple[Path, int, Path]]:
    """A small disk image of the real kernel + initrd, served over HTTP with an access log."""
    folder = tmp_path / "images" / "vmlab"
    folder.mkdir(parents=True)
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("deployed\n")
    subprocess.run(["tar", "-cf", str(folder / "rootfs.tar"), "-C", str(tree), "."], check=True)
    for name in ("vmlinuz", "initrd.img"):
        shutil.copy(image / name, folder / name)
    disk.build_disk(folder, "lab", boot_mib=32, least_root_mib=32)
    ramdisk.write_ramdisk(folder)
    seed = tmp_path / "images" / "seeds" / "n1"  # served at /seeds/n1/
    seed.mkdir(parents=True)
    for name in ("meta-data", "user-data", "network-config"):
        (seed / name).write_text(f"# {name} of n1\n")
    log = tmp_path / "access.log"
    handler = type("H", (_Handler,), {"log_path": log})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path / "images")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, server.server_address[1], log
    finally:
        server.shutdown()
        server.server_close()


def _deploy(tmp: Path, folder: Path, port: int, digest: str) -> subprocess.CompletedProcess[str]:
    blank = tmp / "blank.qcow2"
    blank.unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "1G"], check=True)
    initrd = tmp / "initrd.all"
    initrd.write_bytes((folder / "initrd.img").read_bytes()
                       + (folder / ramdisk.RAMDISK).read_bytes())  # what iPXE's two initrds do
    url = f"http://10.0.2.2:{port}"  # the host, from QEMU's user network
    args = ramdisk.kernel_args(image_url=f"{url}/vmlab/{disk.DISK}", digest=digest,
                               size=(folder / disk.DISK).stat().st_size,
                               report_url=f"{url}/deploy/n1", seed_url=f"{url}/seeds/n1/")
    return subprocess.run(
        ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-display", "none",
         "-monitor", "none", "-no-reboot", "-serial", f"file:{tmp / 'serial.log'}",
         "-kernel", str(folder / "vmlinuz"), "-initrd", str(initrd),
         "-append", f"console=ttyS0 {args}",
         "-drive", f"file={blank},if=virtio,format=qcow2",
         "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"],
        capture_output=True, text=True, timeout=240)


def _steps(log: Path) -> observe.Step:
    reqs = [r for r in observe.parse_access_log(log.read_text()) if r.client == "127.0.0.1"]
    return next(s for s in observe.boot_progress(
        "n1", "127.0.0.1", "", "vmlab", [], reqs) if s.name == "deployed")


def test_ramdisk_writes_verifies_and_reports(tmp_path: Path,
                                             served: tuple[Path, int, Path]) -> None:
    folder, port, log = served
    digest = "sha256:" + hashlib.sha256((folder / disk.DISK).read_bytes()).hexdigest()
    res = _deploy(tmp_path, folder, port, digest)  # powers itself off: QEMU exits
    serial = (tmp_path / "serial.log").read_text(errors="replace")
    assert res.returncode == 0, res.stderr + serial[-3000:]
    deployed = _steps(log)
    assert deployed.done, deployed.detail + serial[-3000:]
    assert f'"POST /deploy/n1/done?digest={digest} HTTP/1.1" 204' in log.read_text()
    # the VM's disk now starts with the image, and its root points cloud-init at the seed
    raw = tmp_path / "vm.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(tmp_path / "blank.qcow2"),
                    str(raw)], check=True)
    size = (folder / disk.DISK).stat().st_size
    with raw.open("rb") as f:
        head = f.read(size)
    assert head[:440] == (folder / disk.DISK).read_bytes()[:440]
    root_start = (disk.BOOT_START + 32 * (1 << 20) // disk.SECTOR) * disk.SECTOR
    part = tmp_path / "root.part"
    part.write_bytes(head[root_start:])
    cfg = subprocess.run(["debugfs", "-R", "cat /etc/cloud/cloud.cfg.d/90-gpuctl-seed.cfg",
                          str(part)], capture_output=True, text=True).stdout
    assert yaml.safe_load(cfg)["datasource_list"] == ["NoCloud", "None"]
    assert f"http://10.0.2.2:{port}/seeds/n1/" in cfg
    for name in ("meta-data", "user-data", "network-config"):
        got = subprocess.run(["debugfs", "-R", f"cat /var/lib/cloud/seed/nocloud/{name}",
                              str(part)], capture_output=True, text=True).stdout
        assert got == f"# {name} of n1\n"
    hostname = subprocess.run(["debugfs", "-R", "cat /etc/hostname", str(part)],
                              capture_output=True, text=True).stdout
    assert hostname == "deployed\n"
    # powered on with the boot device on disk: SeaBIOS -> the written MBR -> SYSLINUX -> the
    # image's kernel from the boot partition, which mounts its root from the VM's disk
    _boots_from_disk(tmp_path)


def _boots_from_disk(tmp: Path) -> None:
    import time

    log = tmp / "disk-serial.log"
    vm = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-display", "none",
         "-monitor", "none", "-no-reboot", "-serial", f"file:{log}", "-boot", "order=c",
         "-drive", f"file={tmp / 'blank.qcow2'},if=virtio,format=qcow2",
         "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        text = ""
        while time.monotonic() < deadline and vm.poll() is None:
            text = log.read_text(errors="replace") if log.exists() else ""
            if "EXT4-fs (vda2): mounted" in text:
                break
            time.sleep(1)
        assert f"root=LABEL={disk.ROOT_LABEL}" in text, text[-2000:]
        assert "EXT4-fs (vda2): mounted" in text, text[-2000:]
    finally:
        vm.kill()
        vm.wait(timeout=30)


def test_ramdisk_reports_a_checksum_mismatch(tmp_path: Path,
                                             served: tuple[Path, int, Path]) -> None:
    folder, port, log = served
    res = _deploy(tmp_path, folder, port, "sha256:" + "0" * 64)
    assert res.returncode == 0, res.stderr
    deployed = _steps(log)
    assert not deployed.done and deployed.detail == "deploy ramdisk: image checksum mismatch"
    assert "disk has sha256:" in (tmp_path / "serial.log").read_text(errors="replace")
