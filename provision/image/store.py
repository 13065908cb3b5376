"""The image directory: one folder per built recipe, ``<name>-<key>/`` holding ``rootfs.tar``,
``packages.tsv`` (package, version) and ``image.json`` (recipe, sha256 digest, size, when,
which node groups). ``image.json`` is written last, so a folder without it is an unfinished
build and is never listed or reused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import UsageError

ROOTFS = "rootfs.tar"
META = "image.json"
MANIFEST = "packages.tsv"
FORMAT = 1


@dataclass(frozen=True)
class ImageRecord:
    name: str
    key: str
    digest: str  # "sha256:<hex>" of rootfs.tar
    size: int
    built_at: str
    groups: tuple[str, ...]
    packages: int
    recipe: dict[str, Any]
    tool: str
    path: Path
    boot: dict[str, str] = field(default_factory=dict)
    """Network-boot files next to rootfs.tar: served name (vmlinuz, initrd.img) -> the file
    in the image's /boot it came from."""
    disk: dict[str, Any] = field(default_factory=dict)
    """The deploy ramdisk's inputs when the image has a kernel: {"digest", "size"} of
    ``disk.img`` (what the ramdisk writes and verifies) and {"ramdisk"} its file name."""

    @property
    def rootfs(self) -> Path:
        return self.path / ROOTFS

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, "key": self.key, "digest": self.digest,
                "size": self.size, "built_at": self.built_at, "groups": list(self.groups),
                "packages": self.packages, "recipe": self.recipe, "tool": self.tool,
                "boot": dict(self.boot), "disk": dict(self.disk),
                "path": str(self.path)}


def image_dir(images: Path, name: str, key: str) -> Path:
    return images / f"{name}-{key}"


def write_record(rec: ImageRecord) -> None:
    data = rec.as_dict()
    del data["path"]
    tmp = rec.path / (META + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, rec.path / META)


def read_record(folder: Path) -> ImageRecord | None:
    meta = folder / META
    if not meta.is_file():
        return None
    try:
        d = json.loads(meta.read_text())
        return ImageRecord(name=d["name"], key=d["key"], digest=d["digest"], size=d["size"],
                           built_at=d["built_at"], groups=tuple(d["groups"]),
                           packages=d["packages"], recipe=d["recipe"], tool=d["tool"],
                           path=folder, boot=d.get("boot", {}), disk=d.get("disk", {}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{meta}: not a gpuctl image record ({exc})") from exc


def list_images(images: Path) -> list[ImageRecord]:
    """Every finished image under ``images``, by name then build time."""
    if not images.is_dir():
        return []
    recs = [r for d in sorted(images.iterdir()) if d.is_dir()
            if (r := read_record(d)) is not None]
    return sorted(recs, key=lambda r: (r.name, r.built_at))
