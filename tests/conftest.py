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


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
