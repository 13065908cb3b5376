"""What a lab host's private filesystem is seeded with before its overlays are mounted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provision.lab.hostfs import ROOT_SHELL_FILES, IbSettings, prepare_host
from provision.lab.state import HostRecord

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="seeding chowns the upper dirs")


def _host(name: str) -> HostRecord:
    return HostRecord(name=name, address="10.0.0.11", netns=f"gl-{name}", veth="v0",
                      mac="02:00:00:00:00:01", bmc_system_id="sys-1", hca_ids=("mlx5_0",),
                      catalog_type="dgx-h100")


def test_host_is_seeded_with_its_identity_and_a_plain_root_shell(tmp_path: Path) -> None:
    host = _host("lab-gpu-01")
    holder = prepare_host(tmp_path / "h", host, all_hosts=[host],
                          admin_public_key="ssh-ed25519 AAAAC3Nz admin",
                          ib=IbSettings(server="127.0.0.1", port=7070),
                          sshd_command=["/usr/sbin/sshd", "-D"])
    upper = tmp_path / "h" / "upper"
    assert (upper / "etc/hostname").read_text() == "lab-gpu-01\n"
    assert "ssh-ed25519 AAAAC3Nz admin" in (upper / "root/.ssh/authorized_keys").read_text()
    # The machine's own login files (a developer's pyenv init, say) never run on lab hosts.
    for name in ROOT_SHELL_FILES:
        text = (upper / "root" / name).read_text()
        assert [ln for ln in text.splitlines() if ln and not ln.startswith("#")] == []
    config = json.loads(holder.read_text())
    assert {o["target"] for o in config["overlays"]} >= {"/root", "/etc"}
