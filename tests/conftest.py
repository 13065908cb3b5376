"""Shared fixtures: repository paths and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SITES = ROOT / "inventory" / "sites"
EXAMPLE_SITES = sorted(p.name for p in SITES.iterdir() if (p / "site.yaml").exists())
SHARED = ROOT.parent / "shared"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
