"""The raw disk image the deploy ramdisk writes (``disk.img`` next to ``rootfs.tar``), made
without mounting anything: an MBR partition table with a small FAT boot partition (SYSLINUX,
the image's kernel and initrd) and an ext4 root filesystem made from the rootfs tarball
(``mkfs.ext4 -d``). Its sha256 and size go into the image record; the ramdisk checks them.

Small, because under emulation every byte is fetched, written and read back by the ramdisk:
the tree loses what a server never reads (documentation, man pages, translations; dpkg is
told to keep leaving them out) and the host keys the build made (each node gets its own from
its seed), and the root filesystem is shrunk to its used blocks plus :data:`ROOT_SLACK_MIB`
(``resize2fs -M``); cloud-init's growpart and resizefs grow it to the whole disk on first boot.

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
ROOT_SLACK_MIB = 32
"""Free room left in the shrunk root for first boot until cloud-init has grown it."""
LAYOUT = 3
"""Version of what :func:`build_disk` makes; a cached image whose disk.img has another is
re-made (:func:`provision.image.build.build`)."""
PRUNED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
          "usr/share/lintian", "var/cache/apt", "var/lib/apt/lists")
"""Folders emptied in the written root (and kept out of later installs by dpkg)."""
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*",
                 "/usr/share/locale/*", "/usr/share/lintian/*")
MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
TOOLS = {"mkfs.ext4": "e2fsprogs", "resize2fs": "e2fsprogs", "e2fsck": "e2fsprogs",
         "dumpe2fs": "e2fsprogs", "mkfs.vfat": "dosfstools", "mcopy": "mtools",
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


def slim_tree(tree: Path) -> int:
    """Empty :data:`PRUNED` under ``tree``, drop the build's SSH host keys, keep dpkg from
    bringing the pruned files back, mount the root from its label (``/etc/fstab``); returns
    the bytes removed."""
    removed = 0
    for rel in PRUNED:
        top = tree / rel
        if not top.is_dir() or top.is_symlink():
            continue
        for child in list(top.iterdir()):
            if child.is_dir() and not child.is_symlink():
                removed += sum(f.lstat().st_size for f in child.rglob("*")
                               if f.is_file() or f.is_symlink())
                shutil.rmtree(child)
            else:
                removed += child.lstat().st_size
                child.unlink()
    for key in sorted((tree / "etc" / "ssh").glob("ssh_host_*")):
        removed += key.lstat().st_size
        key.unlink()
    fstab = tree / "etc" / "fstab"
    lines = fstab.read_text().splitlines() if fstab.is_file() else []
    if not any(ln.split()[1:2] == ["/"] for ln in lines if not ln.lstrip().startswith("#")):
        # without it systemd never remounts the root read-write (the kernel mounts it ro)
        fstab.write_text("".join(ln + "\n" for ln in lines if ln.strip())
                         + f"LABEL={ROOT_LABEL} / ext4 defaults,errors=remount-ro 0 1\n")
    cfg = tree / "etc" / "dpkg" / "dpkg.cfg.d"
    if cfg.is_dir():
        (cfg / "gpuctl-slim").write_text(
            "# gpuctl image: servers need no documentation or translations\n"
            + "".join(f"path-exclude={p}\n" for p in DPKG_EXCLUDES)
            + "path-include=/usr/share/locale/locale.alias\n")
    return removed


def _fs_bytes(run: Run, image: Path) -> int:
    res = run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=False)
    fields = dict(ln.split(":", 1) for ln in res.stdout.splitlines() if ":" in ln)
    try:
        return int(fields["Block count"]) * int(fields["Block size"])
    except (KeyError, ValueError) as exc:
        raise ExecutionError(f"disk image: dumpe2fs -h {image} gave no block count") from exc


def _used_bytes(run: Run, image: Path) -> int:
    res = run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=False)
    fields = dict(ln.split(":", 1) for ln in res.stdout.splitlines() if ":" in ln)
    try:
        return (int(fields["Block count"]) - int(fields["Free blocks"])) \
            * int(fields["Block size"])
    except (KeyError, ValueError) as exc:
        raise ExecutionError(f"disk image: dumpe2fs -h {image} gave no block counts") from exc


def shrink_root(run: Run, image: Path, slack_mib: int = ROOT_SLACK_MIB) -> int:
    """Shrink the ext4 image file to its used blocks plus ``slack_mib``; returns its size."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    _check(run, ["e2fsck", "-fy", str(image)], "e2fsck", env=env)
    _check(run, ["resize2fs", "-M", str(image)], "resize2fs -M", env=env)
    # -M leaves room by a conservative estimate (a quarter of a 400 MB tree); the used
    # blocks plus the slack are enough, which -f allows; e2fsck checks the result
    want_kib = (_used_bytes(run, image) >> 10) + slack_mib * 1024
    want_kib = -(-want_kib // 1024) * 1024  # whole MiB
    if want_kib < _fs_bytes(run, image) >> 10:
        _check(run, ["resize2fs", "-f", str(image), f"{want_kib}K"], "resize2fs", env=env)
        _check(run, ["e2fsck", "-fn", str(image)], "e2fsck after resize2fs", env=env)
    size = _fs_bytes(run, image)
    with image.open("r+b") as f:
        f.truncate(size)
    return size


def _check(run: Run, argv: Sequence[str], what: str, **kw: object) -> None:
    res = run(list(argv), capture_output=True, text=True, check=False, **kw)
    if res.returncode != 0:
        why = (res.stderr.strip() or res.stdout.strip()).splitlines()
        raise ExecutionError(f"disk image: {what} failed (exit {res.returncode}): "
                             f"{why[-1] if why else 'no output'}")


def boot_size_mib(kernel_bytes: int, initrd_bytes: int) -> int:
    """The FAT boot partition: the kernel and initrd plus a quarter, at least 32 MiB."""
    return max(32, -(-(kernel_bytes + initrd_bytes) * 5 // 4 // (1 << 20)) + 4)


def build_disk(folder: Path, key: str, *, run: Run = subprocess.run, boot_mib: int | None = None,
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
    if boot_mib is None:
        boot_mib = boot_size_mib((folder / "vmlinuz").stat().st_size,
                                 (folder / "initrd.img").stat().st_size)
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
        slim_tree(tree)
        _check(run, ["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-U", fs_uuid, "-J", "size=16",
                     "-E", f"hash_seed={fs_uuid}", "-d", str(tree), str(root),
                     f"{root_mib}M"], "mkfs.ext4", env=env)
        shutil.rmtree(tree)
        shrink_root(run, root)
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
