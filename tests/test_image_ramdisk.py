"""The deploy ramdisk and the disk image it writes, without booting anything: the cpio
archive (read back by busybox), the failure reasons its /init can report (each one the image
phase names), the iPXE script that boots it, and a small disk image built for real."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from provision.image import disk, ipxe, observe, ramdisk


def test_cpio_is_newc_and_deterministic() -> None:
    entries = [("d", 0o040755, b""), ("d/f", 0o100644, b"hello"), ("d/l", 0o120777, b"f")]
    a = ramdisk.cpio(entries)
    assert a == ramdisk.cpio(entries) and a.startswith(b"070701") and len(a) % 4 == 0
    assert b"TRAILER!!!" in a
    if shutil.which("busybox"):
        res = subprocess.run(["busybox", "cpio", "-t"], input=a, capture_output=True)
        assert res.stdout.decode().split() == ["d", "d/f", "d/l"]


@pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox")
def test_ramdisk_holds_init_busybox_and_its_libraries(tmp_path: Path) -> None:
    data = ramdisk.ramdisk_bytes()
    assert data == ramdisk.ramdisk_bytes()  # same busybox, same bytes
    res = subprocess.run(["busybox", "cpio", "-t"], input=gzip.decompress(data),
                         capture_output=True)
    names = set(res.stdout.decode().split())
    assert {"init", "gpuctl/bin/busybox", "gpuctl/bin/wget", "gpuctl/bin/sha256sum",
            "gpuctl/udhcpc.sh"} <= names
    # never an entry at lib/ or lib64/: it would replace the image initrd's usrmerge links
    assert not any(n in ("lib", "lib64") or n.startswith(("lib/", "lib64/")) for n in names)
    with pytest.raises(Exception, match="needs busybox at /nonexistent"):
        ramdisk.ramdisk_bytes(Path("/nonexistent"))


def test_every_reported_failure_has_words_in_the_image_phase() -> None:
    reasons = set(re.findall(r"fail ([a-z-]+)", ramdisk.INIT))
    assert reasons == set(observe.DEPLOY_FAILURES)
    assert 'report "done?digest=$got"' in ramdisk.INIT


def test_node_script_boots_the_ramdisk_when_the_image_has_a_disk() -> None:
    plain = ipxe.node_script("10.0.0.2", "n1", "deb", "sha256:aa")
    assert "deploy.cpio.gz" not in plain and "ds=nocloud;s=http://10.0.0.2/seeds/n1/" in plain
    s = ipxe.node_script("10.0.0.2", "n1", "deb", "sha256:aa",
                         {"digest": "sha256:bb", "size": 4096, "ramdisk": "deploy.cpio.gz"})
    lines = s.splitlines()
    assert lines[2].startswith("kernel http://10.0.0.2/images/deb/vmlinuz ")
    assert ("gpuctl.image=http://10.0.0.2/images/deb/disk.img gpuctl.digest=sha256:bb "
            "gpuctl.size=4096 gpuctl.report=http://10.0.0.2/deploy/n1 "
            "gpuctl.seed=http://10.0.0.2/seeds/n1/") in lines[2]
    assert lines[3:] == ["initrd http://10.0.0.2/images/deb/initrd.img",
                         "initrd http://10.0.0.2/images/deb/deploy.cpio.gz", "boot"]


def test_partition_layout_and_boot_config() -> None:
    script = disk.sfdisk_script(196608)
    assert "start=2048, size=196608, type=c, bootable" in script
    assert "start=198656, type=83" in script
    assert "APPEND root=LABEL=gpuctl-root ro" in disk.syslinux_cfg()
    assert disk.root_size_mib(456 << 20) == 768 and disk.root_size_mib(700 << 20) == 1024


def tiny_image(folder: Path, kernel: bytes = b"kernel", initrd: bytes = b"initrd") -> None:
    """A folder as gpuctl image build leaves it: rootfs.tar, vmlinuz, initrd.img."""
    folder.mkdir(parents=True, exist_ok=True)
    tree = folder / "t"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("tiny\n")
    with tarfile.open(folder / "rootfs.tar", "w") as tar:
        tar.add(tree, arcname=".")
    shutil.rmtree(tree)
    (folder / "vmlinuz").write_bytes(kernel)
    (folder / "initrd.img").write_bytes(initrd)


TOOLS = [t for t in disk.TOOLS if shutil.which(t) is None] + \
    ([] if disk.MBR.is_file() else [str(disk.MBR)])


@pytest.mark.skipif(bool(TOOLS), reason=f"missing {TOOLS} (scripts/setup.sh)")
def test_disk_image_has_a_boot_and_a_root_partition(tmp_path: Path) -> None:
    tiny_image(tmp_path)
    made = disk.build_disk(tmp_path, "k1", boot_mib=16, least_root_mib=64)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(made)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    boot, root = table["partitions"]
    assert boot["bootable"] and boot["start"] == 2048 and root["type"] == "83"
    raw = made.read_bytes()
    assert raw[510:512] == b"\x55\xaa" and raw[:440] == disk.MBR.read_bytes()[:440]
    part = tmp_path / "root.part"
    part.write_bytes(raw[root["start"] * 512:])
    cat = subprocess.run(["debugfs", "-R", "cat /etc/hostname", str(part)],
                         capture_output=True, text=True)
    assert cat.stdout == "tiny\n"
    label = subprocess.run(["e2label", str(part)], capture_output=True, text=True)
    assert label.stdout.strip() == disk.ROOT_LABEL
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "disk.img", "initrd.img", "root.part", "rootfs.tar", "vmlinuz"]  # no leftovers
    (tmp_path / "vmlinuz").unlink()
    with pytest.raises(Exception, match="vmlinuz is missing"):
        disk.build_disk(tmp_path, "k1")
