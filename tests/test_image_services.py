"""The image phase's boot services deploy request (pure): which host, how it is reached,
which variables; the run itself is tests/integration/test_image_vm_lab.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import ExecutionError
from provision.execute.access import Access, AccessFile
from provision.image import services


def _seeded(state: Path) -> None:
    state.mkdir(parents=True)
    (state / services.VARS_FILE).write_text(
        "boot_services_address: 10.1.0.2\nboot_services_images: []\n"
        "boot_services_service_manager: systemd\n")


def test_unseeded_site_deploys_nothing(tmp_path: Path) -> None:
    assert services.request(tmp_path, "10.1.0.2", Access()) is None


def test_default_is_root_at_the_services_address_with_host_keys_checked(
        tmp_path: Path) -> None:
    _seeded(tmp_path / "s")
    req = services.request(tmp_path / "s", "10.1.0.2", Access())
    assert req is not None
    hv = req.inventory()["all"]["children"][services.GROUP]["hosts"][services.HOST]
    assert (hv["ansible_host"], hv["ansible_user"], hv["ansible_port"]) == ("10.1.0.2", "root", 22)
    assert hv["ansible_ssh_common_args"] == "-o StrictHostKeyChecking=yes"
    assert req.extravars["boot_services_service_manager"] == "systemd"


def test_access_file_names_the_host_and_overrides_variables(tmp_path: Path) -> None:
    _seeded(tmp_path / "s")
    acc = Access(tmp_path / "access.yaml", AccessFile.model_validate({
        "ssh": {"key": "admin_ed25519", "known_hosts": "known_hosts"},
        "boot_services": {"ssh": {"address": "10.9.0.2", "port": 2222},
                          "vars": {"boot_services_service_manager": "none"}}}))
    req = services.request(tmp_path / "s", "10.1.0.2", acc)
    assert req is not None
    hv = req.inventory()["all"]["children"][services.GROUP]["hosts"][services.HOST]
    assert (hv["ansible_host"], hv["ansible_port"]) == ("10.9.0.2", 2222)
    assert hv["ansible_ssh_private_key_file"] == str(tmp_path / "admin_ed25519")
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in hv["ansible_ssh_common_args"]
    assert req.extravars["boot_services_service_manager"] == "none"
    assert req.extravars["boot_services_address"] == "10.1.0.2"


def test_a_broken_inputs_file_says_which(tmp_path: Path) -> None:
    (tmp_path / services.VARS_FILE).write_text("- not\n- a mapping\n")
    with pytest.raises(ExecutionError, match="boot_services.yml: not a mapping"):
        services.request(tmp_path, "10.1.0.2", Access())
