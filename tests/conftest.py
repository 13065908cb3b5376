"""Shared fixtures: repository paths, the golden-file update switch and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SITES = ROOT / "inventory" / "sites"
EXAMPLE_SITES = sorted(p.name for p in SITES.iterdir() if (p / "site.yaml").exists())
SHARED = ROOT.parent / "shared"

UPDATE_GOLDEN_ENV = "GPUCTL_UPDATE_GOLDEN"
UPDATE_GOLDEN = os.environ.get(UPDATE_GOLDEN_ENV) == "1"
"""``GPUCTL_UPDATE_GOLDEN=1``: every golden-file test rewrites its expected files from the
code instead of comparing (review the diff afterwards)."""

_OLD_SPELLINGS = ("GPUCTL_GOLDEN_UPDATE", "GPUCTL_REGEN_GOLDEN")


def pytest_configure(config: pytest.Config) -> None:
    old = [name for name in _OLD_SPELLINGS if name in os.environ]
    if old:
        raise pytest.UsageError(f"{old[0]} is no longer read; set {UPDATE_GOLDEN_ENV}=1 to "
                                "update golden files")


LAB_GROUP = "lab"
LAB_FIRST = ("tests/integration/test_provision_vm_lab.py",)
"""Lab modules that start the lab group: the longest, and the one whose bounds are made for
a loaded machine (TCG VMs), overlaps the other worker's unit tests."""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """For ``pytest -n 2 --dist loadgroup`` (scripts/test.sh): every lab test in one group,
    so the lab (namespaces, libvirt, the shared image cache) is only ever used by one worker
    and its module fixtures are built once, while the other worker runs the unit tests,
    each module kept whole on one worker. Without xdist the marks change nothing."""
    for item in items:
        group = LAB_GROUP if item.get_closest_marker("lab") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
    first = [i for i in items if i.nodeid.split("::")[0] in LAB_FIRST]
    items[:] = first + [i for i in items if i not in first]


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker with ``--dist loadgroup``, the lab group must have reached the
    node ids (xdist 3.8 writes them where pytest 9 no longer reads them: pytest<9 is
    pinned); otherwise two workers would share the lab."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in session.items
            if i.get_closest_marker("lab") and not i.nodeid.endswith(f"@{LAB_GROUP}")]
    if lost:
        raise pytest.UsageError(f"pytest-xdist did not group the lab tests ({lost[0]}): "
                                "use pytest<9 with pytest-xdist 3 (pyproject.toml pins it)")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
