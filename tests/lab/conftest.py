"""Lab tests: ``@pytest.mark.lab`` ones need root on Linux and the lab's tools; they are
skipped (with the reason) when either is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # labspec.py, shared with bench/lab_scale.py


def lab_unavailable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the lab needs Linux"
    if os.geteuid() != 0:
        return "the lab needs root"
    missing = [t for t in ("ip", "ibsim", "opensm", "sshd", "ssh-keygen", "nsenter")
               if shutil.which(t) is None and not os.path.exists(f"/usr/sbin/{t}")]
    if shutil.which("sushy-emulator") is None and importlib.util.find_spec("sushy_tools") is None:
        missing.append("sushy-emulator")
    return f"lab tools missing: {', '.join(missing)}" if missing else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = lab_unavailable()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("lab") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
