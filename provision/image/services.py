"""The boot services, deployed by the image phase itself before it boots any node: Ansible
runs ``playbooks/boot_services.yml`` on the site's provisioning host (group
``gpuctl_boot_services``) with what ``gpuctl image seed`` wrote as its inputs
(``SITE/.gpuctl/boot_services.yml``: the Kea config, iPXE scripts, seeds, images), the access
file's ``boot_services.vars`` over them. The role is idempotent: a second run changes nothing.

:func:`request` is pure (plan + access + seed outputs -> inventory and variables);
:func:`deploy` runs it through the playbook runner passed in and words the result.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provision.errors import ExecutionError
from provision.execute import ansible
from provision.execute.access import Access
from provision.execute.rundir import RunDir
from provision.execute.ssh import SshTarget
from provision.execute.steps import Outcome

GROUP = "gpuctl_boot_services"
HOST = "boot-services"
PLAYBOOK = "boot_services.yml"
VARS_FILE = "boot_services.yml"
"""Under SITE/.gpuctl: written by ``gpuctl image seed``."""


@dataclass(frozen=True)
class BootServices:
    """One provisioning host and the playbook variables for it."""

    target: SshTarget
    extravars: Mapping[str, Any] = field(default_factory=dict)

    def inventory(self) -> dict[str, Any]:
        """The Ansible inventory (JSON) of the provisioning host, host keys checked."""
        t = self.target
        hostvars: dict[str, Any] = {"ansible_host": t.address, "ansible_user": t.user,
                                    "ansible_port": t.port,
                                    "ansible_python_interpreter": "/usr/bin/python3"}
        if t.key_file is not None:
            hostvars["ansible_ssh_private_key_file"] = str(t.key_file)
        args = ["-o StrictHostKeyChecking=yes"]
        if t.known_hosts is not None:
            args.append(f"-o UserKnownHostsFile={t.known_hosts}")
        hostvars["ansible_ssh_common_args"] = " ".join(args)
        return {"all": {"children": {GROUP: {"hosts": {HOST: hostvars}}}}}


def request(state: Path, services_address: str, access: Access) -> BootServices | None:
    """The boot services deploy of a seeded site (None when ``gpuctl image seed`` has not
    written ``state/boot_services.yml``)."""
    path = state / VARS_FILE
    if not path.is_file():
        return None
    try:
        seeded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExecutionError(f"{path}: cannot read the boot services inputs ({exc}); run "
                             "gpuctl image seed again") from exc
    if not isinstance(seeded, dict):
        raise ExecutionError(f"{path}: not a mapping of boot_services variables")
    target = access.boot_services_target(services_address)
    extravars = {**seeded, **access.spec.boot_services.vars}
    return BootServices(target, extravars)


def deploy(bs: BootServices, *, playbooks: Path, workdir: RunDir | None,
           run_playbook: Callable[..., ansible.PlaybookResult] = ansible.run_playbook,
           cancelled: Callable[[], bool] = lambda: False) -> Outcome:
    """Run the boot services playbook on the provisioning host: ``changed`` (with how many
    tasks changed), ``ok`` (nothing to change), or ``failed`` naming the host."""
    folder = workdir.tmp if workdir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpuctl-bootsvc-", dir=folder) as tmp:
        inv = Path(tmp) / "inventory.json"
        inv.write_text(json.dumps(bs.inventory()))
        res = run_playbook(ansible.PlaybookRequest(
            playbook=playbooks / PLAYBOOK, inventory=inv, extravars=dict(bs.extravars),
            workdir=workdir), cancelled=cancelled)
    where = f"boot services on {bs.target.address}"
    stats = res.stats.get(HOST, {})
    if res.status != "successful" or stats.get("failures") or stats.get("unreachable"):
        why = "unreachable" if stats.get("unreachable") else f"playbook {res.status}"
        tally = res.tallies.get(HOST)
        detail = f"{tally.last_task}: {tally.message}" if tally and tally.message else ""
        return Outcome("failed", f"{where}: {why} (rc {res.rc})"
                       + (f": {detail}" if detail else ""))
    changed = int(stats.get("changed", 0))
    if changed:
        return Outcome("changed", f"{where}: deployed ({changed} task(s) changed)",
                       {"changed": changed})
    return Outcome("ok", f"{where}: up to date (nothing changed)")
