"""The raw disk image the deploy ramdisk writes (``disk.img`` next to ``rootfs.tar``), made
without mounting anything: an MBR partition table with a small FAT boot partition (SYSLINUX,
the image's kernel and initrd) and an ext4 root filesystem made from the rootfs tarball
(``mkfs.ext4 -d``). Its sha256 and size go into the image record; the ramdisk checks them.

Tools (Debian): e2fsprogs, dosfstools, mtools, syslinux, syslinux-common, fdisk (sfdisk).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from provision.errors import ExecutionError
from provision.image.observe import DISK_IMAGE as DISK

ROOT_LABEL = "gpuctl-root"
SECTOR = 512
BOOT_START = 2048  # sectors: 1 MiB
BOOT_MIB = 96
MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
TOOLS = {"mkfs.ext4": "e2fsprogs", "mkfs.vfat": "dosfstools", "mcopy": "mtools",
         "syslinux": "syslinux", "sfdisk": "fdisk"}

Run = Callable[..., subprocess.CompletedProcess[str]]


def syslinux_cfg(extra_args: str = "") -> str:
    args = f"root=LABEL={ROOT_LABEL} ro console=tty0 console=ttyS0,115200 {extra_args}".strip()
    return ("DEFAULT gpuctl\nTIMEOUT 0\nPROMPT 0\n"
            "LABEL gpuctl\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n"
            f"  APPEND {args}\n")


def sfdisk_script(boot_sectors: int) -> str:
    root_start = BOOT_START + boot_sectors
    return ("label: dos\nlabel-id: 0x67707563\n"
            f"start={BOOT_START}, size={boot_sectors}, type=c, bootable\n"
            f"start={root_start}, type=83\n")


def root_size_mib(rootfs_bytes: int, least: int = 768) -> int:
    """Room for the unpacked tree plus a third, at least ``least`` MiB (rounded to 64); the
    written root grows to the whole disk on first boot (cloud-init growpart, resizefs)."""
    want = max(least, rootfs_bytes * 4 // 3 // (1 << 20) + 64)
    return -(-want // 64) * 64


def _check(run: Run, argv: Sequence[str], what: str, **kw: object) -> None:
    res = run(list(argv), capture_output=True, text=True, check=False, **kw)
    if res.returncode != 0:
        why = (res.stderr.strip() or res.stdout.strip()).splitlines()
        raise ExecutionError(f"disk image: {what} failed (exit {res.returncode}): "
                             f"{why[-1] if why else 'no output'}")


def build_disk(folder: Path, key: str, *, run: Run = subprocess.run, boot_mib: int = BOOT_MIB,
               least_root_mib: int = 768) -> Path:
    """Make ``folder/disk.img`` from ``rootfs.tar``, ``vmlinuz`` and ``initrd.img`` there."""
    missing = [f"{t} ({p})" for t, p in TOOLS.items() if shutil.which(t) is None]
    if not MBR.is_file():
        missing.append(f"{MBR} (syslinux-common)")
    if missing:
        raise ExecutionError("disk image needs " + ", ".join(missing)
                             + "; scripts/setup.sh installs them")
    for name in ("rootfs.tar", "vmlinuz", "initrd.img"):
        if not (folder / name).is_file():
            raise ExecutionError(f"disk image: {folder / name} is missing (an image without "
                                 "a kernel cannot boot from disk)")
    fs_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"gpuctl-image-{key}"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    boot, root, disk = folder / "boot.vfat", folder / "root.ext4", folder / (DISK + ".partial")
    tree = folder / "rootfs.tree"
    for p in (boot, root, disk):
        p.unlink(missing_ok=True)
    shutil.rmtree(tree, ignore_errors=True)
    try:
        root_mib = root_size_mib((folder / "rootfs.tar").stat().st_size, least_root_mib)
        # (mke2fs takes a tarball for -d only from 1.47.1; Debian 12 has 1.47.0)
        tree.mkdir()
        _check(run, ["tar", "-xf", str(folder / "rootfs.tar"), "-C", str(tree),
                     "--numeric-owner", "--same-permissions", "--xattrs"], "unpacking rootfs.tar")
        _check(run, ["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-U", fs_uuid,
                     "-E", f"hash_seed={fs_uuid}", "-d", str(tree), str(root),
                     f"{root_mib}M"], "mkfs.ext4", env=env)
        shutil.rmtree(tree)
        _check(run, ["mkfs.vfat", "-n", "GPUCTLBOOT", "-i", fs_uuid[:8], "-C", str(boot),
                     str(boot_mib * 1024)], "mkfs.vfat", env=env)
        (folder / "syslinux.cfg").write_text(syslinux_cfg())
        for name in ("vmlinuz", "initrd.img", "syslinux.cfg"):
            _check(run, ["mcopy", "-m", "-i", str(boot), str(folder / name), f"::/{name}"],
                   f"mcopy {name}", env={**env, "MTOOLS_SKIP_CHECK": "1"})
        _check(run, ["syslinux", "--install", str(boot)], "syslinux --install", env=env)
        boot_sectors = boot_mib * (1 << 20) // SECTOR
        total = (BOOT_START + boot_sectors) * SECTOR + root.stat().st_size
        with disk.open("wb") as f:
            f.truncate(total)
        _check(run, ["sfdisk", "-q", str(disk)], "sfdisk", input=sfdisk_script(boot_sectors),
               env=env)
        with disk.open("r+b") as f:
            f.write(MBR.read_bytes()[:440])
            for part, start in ((boot, BOOT_START), (root, BOOT_START + boot_sectors)):
                f.seek(start * SECTOR)
                with part.open("rb") as src:
                    shutil.copyfileobj(src, f, 1 << 22)
        disk.rename(folder / DISK)
    finally:
        for p in (boot, root, disk, folder / "syslinux.cfg"):
            p.unlink(missing_ok=True)
        shutil.rmtree(tree, ignore_errors=True)
    return folder / DISK
