"""The image phase's own boot services deploy, for real: :func:`provision.image.services.deploy`
(what ``gpuctl provision site --phases image`` runs before it boots a node) applies
playbooks/boot_services.yml through ansible-runner to a lab namespace host at the plan's
services address, the way the access file names it (``boot_services.ssh``, ``.vars``), with
``gpuctl image seed``'s outputs as its inputs; the second deploy changes nothing. The
services then answer: the node's iPXE script and seed over HTTP, Kea running.

The end-to-end VM test (two libvirt VMs in two racks imaged by ``gpuctl provision site
--phases preflight,image,base``, then a DHCP fault) is tests/integration/test_provision_vm_lab.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_boot_services_lab import (  # noqa: E402
    VM_MAC,
    VM_NODE,
    _ssh,
    _unavailable,
    boot_lab,
)

from provision.cli.main import cli  # noqa: E402
from provision.execute import ansible  # noqa: E402
from provision.execute.access import Access, AccessFile  # noqa: E402
from provision.image import services  # noqa: E402

__all__ = ["boot_lab"]
pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))]


def test_image_phase_deploys_the_boot_services_idempotently(
        boot_lab: dict[str, object]) -> None:
    lab, svc = boot_lab, str(boot_lab["svc"])
    site = Path(str(lab["site"]))
    (site / "macs.json").write_text(json.dumps({f"{VM_NODE}/eno1": VM_MAC}))
    assert CliRunner().invoke(cli, ["image", "seed", str(site)]).exit_code == 0
    paths = lab["state"].paths  # type: ignore[attr-defined]
    access = Access(site / "access.yaml", AccessFile.model_validate({
        "ssh": {"key": str(paths.admin_key), "known_hosts": str(paths.known_hosts)},
        "boot_services": {"vars": {"boot_services_service_manager": "none",
                                   "boot_services_install_packages": False}}}))
    req = services.request(site / ".gpuctl", svc, access)
    assert req is not None and req.target.address == svc
    assert req.extravars["boot_services_service_manager"] == "none"
    first = services.deploy(req, playbooks=ansible.PLAYBOOKS, workdir=None)
    assert first.status == "changed", first.detail
    second = services.deploy(req, playbooks=ansible.PLAYBOOKS, workdir=None)
    assert (second.status, second.detail) == (
        "ok", f"boot services on {svc}: up to date (nothing changed)")
    script = _ssh(lab, "cat", f"/srv/gpuctl-boot/http/ipxe/nodes/{VM_NODE}.ipxe")
    assert script.startswith("#!ipxe") and VM_NODE in script
    assert _ssh(lab, "stat", "-c", "%a", f"/srv/gpuctl-boot/http/seeds/{VM_NODE}/user-data"
                ).strip() == "640"
    assert _ssh(lab, "start-stop-daemon", "--status", "--pidfile",
                "/srv/gpuctl-boot/run/kea-dhcp4.pid") == ""
    # a host that cannot be reached fails the deploy, naming it
    bad = services.BootServices(services.SshTarget("boot services", "127.0.0.9", port=1),
                                req.extravars)
    out = services.deploy(bad, playbooks=ansible.PLAYBOOKS, workdir=None)
    assert out.status == "failed" and "boot services on 127.0.0.9: unreachable" in out.detail
