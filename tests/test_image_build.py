"""gpuctl image build|list: recipes from the site model, and a real mmdebstrap build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from provision.cli.main import cli
from provision.image.build import extract_boot_files, parse_dpkg_status
from provision.image.recipe import mmdebstrap_argv, recipes
from provision.loader import load_site
from tests.conftest import SITES

MIRROR = os.environ.get("GPUCTL_TEST_MIRROR", "http://deb.debian.org/debian")
"""Debian mirror for the real build (point it at a local mirror on an air-gapped machine)."""


def make_site(tmp_path: Path, images: list[dict[str, Any]], group_image: str | None) -> Path:
    data = yaml.safe_load((SITES / "lab" / "site.yaml").read_text())
    data["images"] = images
    if group_image is not None:
        data["node_groups"][0]["image"] = group_image
    site = tmp_path / "site"
    site.mkdir(parents=True)
    (site / "site.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return site


TINY = {"name": "tiny", "distribution": "debian", "suite": "bookworm", "mirror": MIRROR,
        "variant": "essential"}


def test_recipe_from_site_and_default(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{**TINY, "packages": ["zstd", "less", "zstd"],
                                 "keyring": "keys/mirror.gpg"}], "tiny")
    [(r, groups)] = recipes(load_site(site))
    assert groups == ["gpu"] and r.packages == ("less", "zstd")
    assert r.keyring == str(site / "keys" / "mirror.gpg")
    argv = mmdebstrap_argv(r, Path("/x/rootfs.tar"))
    assert argv[-3:] == ["bookworm", "/x/rootfs.tar", f"deb {MIRROR} bookworm main"]
    assert "--variant=essential" in argv and "--include=less,zstd" in argv
    [(d, _)] = recipes(load_site(make_site(tmp_path / "d", [], None)))
    assert (d.distribution, d.suite, d.name) == ("ubuntu", "noble", "ubuntu-2404")
    assert "linux-image-generic" in d.packages
    # the key follows the recipe: another package list is another build
    other = make_site(tmp_path / "o", [{**TINY, "packages": ["zstd"]}], "tiny")
    assert recipes(load_site(other))[0][0].key() != r.key()


def test_dpkg_status_parse() -> None:
    text = ("Package: base-files\nStatus: install ok installed\nVersion: 12.4\n"
            "Description: x\n long\n\nPackage: gone\nStatus: deinstall ok config-files\n"
            "Version: 1\n")
    assert parse_dpkg_status(text) == [("base-files", "12.4")]


def test_unknown_image_and_group_are_one_line_errors(tmp_path: Path, runner: CliRunner) -> None:
    site = make_site(tmp_path, [TINY], "tinny")
    res = runner.invoke(cli, ["lint", str(site)])
    assert res.exit_code == 1
    assert "GPU127 node group gpu references unknown image 'tinny'" in res.output
    assert f"{site / 'site.yaml'}:" in res.output
    good = make_site(tmp_path / "g", [TINY], "tiny")
    res = runner.invoke(cli, ["image", "build", str(good), "--group", "cpu"])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "no node group 'cpu' (groups: gpu)" in res.output


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="needs mmdebstrap (setup.sh)")
def test_build_records_digest_and_reuses(tmp_path: Path, runner: CliRunner) -> None:
    site = make_site(tmp_path, [TINY], "tiny")
    images = tmp_path / "images"
    res = runner.invoke(cli, ["image", "build", str(site), "--images", str(images),
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    [rec] = json.loads(res.output)
    assert rec["built"] and rec["groups"] == ["gpu"]
    assert rec["boot"] == {}  # the essential variant has no kernel
    rootfs = Path(rec["path"]) / "rootfs.tar"
    assert rec["digest"] == "sha256:" + hashlib.sha256(rootfs.read_bytes()).hexdigest()
    assert rec["size"] == rootfs.stat().st_size
    manifest = (Path(rec["path"]) / "packages.tsv").read_text().splitlines()
    assert len(manifest) == rec["packages"]
    assert any(line.startswith("base-files\t12") for line in manifest)  # bookworm = 12
    listed = runner.invoke(cli, ["image", "list", str(site), "--images", str(images)])
    assert listed.exit_code == 0
    assert "tiny" in listed.output and rec["digest"] in listed.output
    ok = runner.invoke(cli, ["image", "list", str(site), "--images", str(images), "--verify"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(cli, ["image", "build", str(site), "--images", str(images)])
    assert again.exit_code == 0 and "already built" in again.output
    assert rootfs.stat().st_mtime_ns == Path(rootfs).stat().st_mtime_ns


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="needs mmdebstrap (setup.sh)")
def test_unreachable_mirror_fails_naming_image_and_mirror(tmp_path: Path,
                                                          runner: CliRunner) -> None:
    site = make_site(tmp_path, [{**TINY, "mirror": "http://127.0.0.1:9/debian"}], "tiny")
    images = tmp_path / "images"
    res = runner.invoke(cli, ["image", "build", str(site), "--images", str(images)])
    assert res.exit_code == 1
    err = res.output.strip().splitlines()[-1]
    assert err.startswith("gpuctl: error: image tiny: mmdebstrap failed")
    assert "http://127.0.0.1:9/debian bookworm" in err
    assert runner.invoke(cli, ["image", "list", str(site), "--images",
                               str(images)]).output.startswith("no images built")


def test_boot_files_newest_kernel_and_initrd(tmp_path: Path) -> None:
    import io
    import tarfile

    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        for name, data in (("./boot/vmlinuz-6.1.0-9-cloud-amd64", b"k9"),
                           ("./boot/vmlinuz-6.1.0-10-cloud-amd64", b"k10"),
                           ("./boot/initrd.img-6.1.0-10-cloud-amd64", b"i10"),
                           ("./etc/hostname", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("./vmlinuz")
        link.type, link.linkname = tarfile.SYMTYPE, "boot/vmlinuz-6.1.0-10-cloud-amd64"
        tar.addfile(link)
    out = tmp_path / "img"
    out.mkdir()
    assert extract_boot_files(rootfs, out) == {"vmlinuz": "vmlinuz-6.1.0-10-cloud-amd64",
                                               "initrd.img": "initrd.img-6.1.0-10-cloud-amd64"}
    assert (out / "vmlinuz").read_bytes() == b"k10"
    assert (out / "initrd.img").read_bytes() == b"i10"
    bare = tmp_path / "bare.tar"
    with tarfile.open(bare, "w") as tar:
        tar.addfile(tarfile.TarInfo("./etc"))
    assert extract_boot_files(bare, out) == {}


def test_verify_names_a_checksum_mismatch(tmp_path: Path, runner: CliRunner) -> None:
    from provision.image.store import ImageRecord, write_record

    site = make_site(tmp_path, [TINY], "tiny")
    folder = tmp_path / "images" / "tiny-0123456789abcdef"
    folder.mkdir(parents=True)
    (folder / "rootfs.tar").write_bytes(b"image bytes")
    good = "sha256:" + hashlib.sha256(b"image bytes").hexdigest()
    rec = ImageRecord(name="tiny", key="0123456789abcdef", digest=good, size=11,
                      built_at="2026-12-02T00:00:00Z", groups=("gpu",), packages=0,
                      recipe={"distribution": "debian", "suite": "bookworm",
                              "variant": "essential"}, tool="mmdebstrap", path=folder)
    write_record(rec)
    args = ["image", "list", str(site), "--images", str(tmp_path / "images"), "--verify"]
    assert runner.invoke(cli, args).exit_code == 0
    (folder / "rootfs.tar").write_bytes(b"image bytez")
    res = runner.invoke(cli, args)
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert "image tiny (0123456789abcdef): checksum mismatch" in res.output
    assert f"recorded {good}" in res.output
