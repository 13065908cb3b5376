"""gpuctl installs like a real package.

- The wheel built from this tree, installed into a fresh virtual environment outside the
  checkout, plans a copy of the lab site and dry-runs every provisioning phase offline: its
  templates, playbooks, roles and Pulumi stack are found as package data. Its dependencies
  come from the test environment (a ``.pth`` file; the wheel goes in with ``--no-deps``),
  which keeps the test fast and offline; the test checks that every dependency the wheel
  declares is then installed, and that ``provision`` is imported from the fresh environment.
- The wheel carries exactly the git-tracked files of templates/, playbooks/ and stacks/.
- The production commands never import the lab or its hardware simulator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, SITES

DATA_DIRS = ("templates", "playbooks", "stacks")


def _tree_files() -> list[str]:
    """The checkout's files as a clone would have them, plus new files not yet committed."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          cwd=ROOT, capture_output=True, check=False, timeout=60)
    if proc.returncode != 0:
        pytest.skip("not a git checkout: cannot tell which files a build uses")
    return sorted(f for f in proc.stdout.decode().split("\0") if f and (ROOT / f).is_file())


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600
         ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, (f"{' '.join(argv)} exited {proc.returncode}:\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this tree, built from a copy of its files (the checkout stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for rel in _tree_files():
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
         cwd=src, env=dict(os.environ))
    (found,) = dist.glob("gpuctl-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv outside the checkout with only the wheel installed in it."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)], cwd=venv,
         env=dict(os.environ))
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)], cwd=venv, env=dict(os.environ))
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                         "'purelib'))"], cwd=venv, env={"PATH": "/usr/bin:/bin"}).stdout.strip())
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (purelib / "gpuctl-test-dependencies.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    yield venv


def _env(venv: Path) -> dict[str, str]:
    """The fresh venv first; the dependencies' scripts (ansible-playbook) from the test venv."""
    deps_bin = sysconfig.get_path("scripts")
    return {"PATH": f"{venv / 'bin'}:{deps_bin}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


@pytest.mark.slow
def test_wheel_carries_exactly_the_tracked_data_files(wheel: Path) -> None:
    tracked = {f for f in _tree_files() if f.split("/", 1)[0] in DATA_DIRS
               and not f.endswith(".gitignore")}
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n.removeprefix("provision/") for n in zf.namelist()
                   if n.split("/")[1:2] and n.split("/")[1] in DATA_DIRS}
        names = set(zf.namelist())
    assert shipped == tracked
    assert {"provision/catalog/nodes.yaml", "provision/catalog/versions.yaml",
            "provision/burnin/thresholds.yaml", "provision/py.typed"} <= names


@pytest.mark.slow
def test_installed_wheel_plans_and_dry_runs_outside_the_checkout(installed: Path,
                                                                  tmp_path: Path) -> None:
    env = _env(installed)
    python = str(installed / "bin" / "python")
    probe = _run([python, "-c", (
        "import json, importlib.metadata as m, provision, provision.resources as r\n"
        "from packaging.requirements import Requirement\n"
        "reqs = [Requirement(t) for t in m.requires('gpuctl') or []]\n"
        "core = [q.name for q in reqs if q.marker is None]\n"
        "missing = [n for n in core if not m.distributions(name=n)]\n"
        "print(json.dumps({'provision': provision.__file__, 'checkout': "
        "str(r.source_checkout()), 'playbooks': str(r.playbooks_dir()), 'core': core, "
        "'missing': missing}))")], cwd=tmp_path, env=env)
    info = json.loads(probe.stdout)
    assert info["provision"].startswith(str(installed)), info
    assert info["playbooks"].startswith(str(installed)), info
    assert info["checkout"] == "None"
    assert "ansible-core" in info["core"] and info["missing"] == []

    site = tmp_path / "lab"
    shutil.copytree(SITES / "lab", site, ignore=shutil.ignore_patterns("generated", ".gpuctl"))
    gpuctl = str(installed / "bin" / "gpuctl")
    _run([gpuctl, "lint", "lab"], cwd=tmp_path, env=env)
    plan = _run([gpuctl, "plan", "lab"], cwd=tmp_path, env=env)
    assert "wrote" in plan.stdout
    for rel in ("ansible/inventory.yml", "dhcp/kea-dhcp4.conf", "opensm/opensm.conf",
                "cloud-init"):
        assert (site / "generated" / rel).exists(), rel
    dry = _run([gpuctl, "provision", "site", "lab", "--dry-run", "--offline", "--no-lab",
                "--phases", "all"], cwd=tmp_path, env=env)
    out = dry.stdout
    assert "problem:" not in out, out[-3000:]
    for task in ("apt_repos :", "cuda :", "doca_ofed :", "kubernetes_node :",
                 "gpuctl burnin run SITE --rack a01"):
        assert task in out, f"{task!r} missing from the dry run:\n{out[-3000:]}"


LAB_FREE = {
    "plan": ["plan", str(SITES / "lab"), "-o", "{tmp}/out"],
    "lint": ["lint", str(SITES / "lab")],
    "schema": ["schema"],
    "fabric verify": ["fabric", "verify", str(ROOT / "tests/golden/ibnetdiscover/sites/rail"),
                      "--observed", str(ROOT / "tests/golden/ibnetdiscover/rail_clean.txt")],
    "burnin parse": ["burnin", "parse", "ibstat", str(
        ROOT / "tests/golden/ibstat/ndr_mixed_down_polling_dualport.txt")],
}


@pytest.mark.parametrize("command", sorted(LAB_FREE))
def test_production_commands_do_not_import_the_lab(command: str, tmp_path: Path) -> None:
    args = [a.format(tmp=tmp_path) for a in LAB_FREE[command]]
    for arg in args:
        if arg.startswith(str(ROOT / "tests")):
            assert Path(arg).exists(), arg
    code = ("import sys\nfrom provision.cli.main import main\n"
            f"sys.argv = ['gpuctl', *{args!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n"
            "    code = 0\n"
            "lab = sorted(m for m in sys.modules if m.startswith('provision.lab'))\n"
            "print('LAB-MODULES', code, lab)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert last.startswith("LAB-MODULES"), proc.stderr[-2000:]
    _, code, lab = last.split(" ", 2)
    assert code == "0", f"gpuctl {command} exited {code}: {proc.stderr[-2000:]}"
    assert lab == "[]", f"gpuctl {command} imported the lab: {lab}"
