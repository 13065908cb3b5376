"""Build an image recipe with mmdebstrap into the image directory (the only side effects of
``gpuctl image build``): a build whose recipe key is already there is reused unless
``rebuild``; a failed build says which image, which mirror and mmdebstrap's first error."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from provision.errors import ExecutionError
from provision.image.disk import LAYOUT, build_disk
from provision.image.observe import DISK_IMAGE, RAMDISK
from provision.image.ramdisk import ramdisk_bytes, write_ramdisk
from provision.image.recipe import Recipe, mmdebstrap_argv
from provision.image.store import (
    MANIFEST,
    ROOTFS,
    ImageRecord,
    image_dir,
    read_record,
    write_record,
)

LOG = "build.log"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def parse_dpkg_status(text: str) -> list[tuple[str, str]]:
    """Installed (package, version) pairs of a dpkg status file, sorted."""
    out = []
    for para in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in para.splitlines():
            if line and not line[0].isspace() and ":" in line:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            out.append((fields["Package"], fields.get("Version", "")))
    return sorted(out)


def tar_manifest(rootfs: Path) -> list[tuple[str, str]]:
    with tarfile.open(rootfs) as tar:
        for member in tar:
            if member.name.lstrip("./") == "var/lib/dpkg/status" and member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    return parse_dpkg_status(f.read().decode("utf-8", "replace"))
    raise ExecutionError(f"{rootfs}: no var/lib/dpkg/status in the image")


def _version_key(name: str) -> list[tuple[int, str]]:
    """Natural order: vmlinuz-6.1.0-10 after vmlinuz-6.1.0-9."""
    return [(int(t), "") if t.isdigit() else (-1, t) for t in re.split(r"(\d+)", name)]


BOOT_FILES = (("vmlinuz", "boot/vmlinuz-"), ("initrd.img", "boot/initrd.img-"))


def extract_boot_files(rootfs: Path, folder: Path) -> dict[str, str]:
    """Copy the newest kernel and initrd of the image (``/boot/vmlinuz-*``,
    ``/boot/initrd.img-*``) next to it as ``vmlinuz`` and ``initrd.img``, for network boot;
    returns {served name: file name in /boot} of those found (none in a kernel-less image)."""
    found: dict[str, tarfile.TarInfo] = {}
    with tarfile.open(rootfs) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            for served, prefix in BOOT_FILES:
                if name.startswith(prefix) and member.isfile() and (
                        served not in found or _version_key(found[served].name)
                        < _version_key(member.name)):
                    found[served] = member
        out = {}
        for served, member in found.items():
            f = tar.extractfile(member)
            if f is None:  # pragma: no cover - isfile() members always extract
                continue
            (folder / served).write_bytes(f.read())
            out[served] = member.name.removeprefix("./boot/").removeprefix("boot/")
    return out


def first_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("E:"):
            return ln[2:].strip()
    return lines[-1] if lines else "no output"


def build(recipe: Recipe, images: Path, groups: Sequence[str], *, rebuild: bool = False,
          run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
          ) -> tuple[ImageRecord, bool]:
    """Build (or reuse) ``recipe``; returns its record and whether it was built now."""
    folder = image_dir(images, recipe.name, recipe.key())
    if not rebuild and (rec := read_record(folder)) is not None and rec.rootfs.is_file():
        return refresh_disk(rec, run=run), False
    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise ExecutionError("image build needs mmdebstrap (Debian package mmdebstrap; "
                             "scripts/setup.sh installs it)")
    if recipe.keyring is not None and not Path(recipe.keyring).is_file():
        hint = " (Debian package ubuntu-keyring)" if recipe.distribution == "ubuntu" else ""
        raise ExecutionError(f"image {recipe.name}: keyring {recipe.keyring} not found{hint}")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    partial = folder / (ROOTFS + ".partial")
    proc = run(mmdebstrap_argv(recipe, partial), capture_output=True, text=True, check=False)
    (folder / LOG).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise ExecutionError(
            f"image {recipe.name}: mmdebstrap failed (exit {proc.returncode}) from mirror "
            f"{recipe.mirror} {recipe.suite}: {first_error(proc.stderr)} "
            f"(log: {folder / LOG})")
    partial.rename(folder / ROOTFS)
    manifest = tar_manifest(folder / ROOTFS)
    boot = extract_boot_files(folder / ROOTFS, folder)
    (folder / MANIFEST).write_text("".join(f"{p}\t{v}\n" for p, v in manifest))
    disk: dict[str, Any] = {}
    if set(boot) == {"vmlinuz", "initrd.img"}:  # bootable: what the deploy ramdisk writes
        disk = _disk(folder, recipe.key(), run)
    version = run(["mmdebstrap", "--version"], capture_output=True, text=True, check=False)
    rec = ImageRecord(
        name=recipe.name, key=recipe.key(), digest=sha256_file(folder / ROOTFS),
        size=(folder / ROOTFS).stat().st_size,
        built_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        groups=tuple(groups), packages=len(manifest), recipe=recipe.as_dict(),
        tool=version.stdout.strip() or "mmdebstrap", path=folder, boot=boot, disk=disk)
    write_record(rec)
    return rec, True


def _disk(folder: Path, key: str, run: Callable[..., subprocess.CompletedProcess[str]],
          ) -> dict[str, Any]:
    made = build_disk(folder, key, run=run)
    return {"digest": sha256_file(made), "size": made.stat().st_size,
            "ramdisk": write_ramdisk(folder).name, "layout": LAYOUT}


def refresh_disk(rec: ImageRecord, *,
                 run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
                 ) -> ImageRecord:
    """A built image whose disk.img predates this gpuctl's layout (:data:`LAYOUT`) gets it
    re-made from its rootfs.tar (the rootfs and its digest stay); a deploy ramdisk that
    differs from this gpuctl's is rewritten. Returns the (updated) record."""
    if set(rec.boot) != {"vmlinuz", "initrd.img"}:
        return rec
    if rec.disk.get("layout") != LAYOUT or not (rec.path / DISK_IMAGE).is_file():
        rec = dataclasses.replace(rec, disk=_disk(rec.path, rec.key, run))
        write_record(rec)
        return rec
    ramdisk = rec.path / str(rec.disk.get("ramdisk", RAMDISK))
    if not ramdisk.is_file() or ramdisk.read_bytes() != ramdisk_bytes():
        write_ramdisk(rec.path)
    return rec


def verify(rec: ImageRecord) -> str | None:
    """None when rootfs.tar still has its recorded digest, else why not (one line)."""
    if not rec.rootfs.is_file():
        return f"image {rec.name} ({rec.key}): {rec.rootfs} is missing"
    digest = sha256_file(rec.rootfs)
    if digest != rec.digest:
        return (f"image {rec.name} ({rec.key}): checksum mismatch: {rec.rootfs} is {digest}, "
                f"recorded {rec.digest} (rebuild with gpuctl image build --rebuild)")
    return None
