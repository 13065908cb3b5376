"""The README's first command works from a fresh clone with only the Debian system Python.

Clones this repository (its committed HEAD) into a temporary directory and runs
``./scripts/quickstart.sh --no-lab`` there with ``PATH=/usr/sbin:/usr/bin:/sbin:/bin``: no
other Python, no activated environment. That is setup.sh (Debian packages, a ``.venv`` made
with the system ``python3 -m venv`` because the system Python is externally managed, PEP
668), then ``gpuctl lint`` and ``gpuctl plan`` of the lab site. The lab steps of the
quickstart are what the lab tests cover. pip's own configuration (``PIP_*``, proxies) is
passed through: it is how this machine reaches packages, and its cache keeps this test
around a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PASSED_THROUGH = ("PIP_", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                  "NO_PROXY")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                       reason="needs a git checkout to clone"),
    pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3"),
]


def test_quickstart_from_a_fresh_clone_with_the_system_python(tmp_path: Path) -> None:
    clone = tmp_path / "gpuctl"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120,
                   capture_output=True)
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_THROUGH)}
    env.update(PATH=SYSTEM_PATH, HOME=os.environ.get("HOME", "/root"), LANG="C.UTF-8")
    proc = subprocess.run(["./scripts/quickstart.sh", "--no-lab"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]

    cfg = (clone / ".venv" / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg, cfg
    assert "== gpuctl lint inventory/sites/lab" in out and "quickstart: done" in out
    generated = clone / "inventory" / "sites" / "lab" / "generated"
    for rel in ("plan.json", "cabling.csv", "ansible/inventory.yml"):
        assert (generated / rel).is_file(), rel
    # What the README says next: put gpuctl on PATH; it then runs from there.
    version = subprocess.run([str(clone / ".venv" / "bin" / "gpuctl"), "--version"],
                             env={"PATH": SYSTEM_PATH}, capture_output=True, text=True,
                             timeout=60, check=True)
    assert "gpuctl, version" in version.stdout
