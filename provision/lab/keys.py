"""SSH material of a lab: its ``ssh -F`` config (keys and known_hosts: :mod:`provision.sshkeys`).

Clients always verify host keys against the lab's ``known_hosts``; nothing here turns
host-key checking off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provision.sshkeys import KnownHost


def ssh_config_text(hosts: Sequence[KnownHost], *, admin_key: Path, known_hosts: Path) -> str:
    """An ``ssh -F`` config: ``ssh -F <lab>/ssh_config <host>`` logs in as root."""
    lines = ["# gpuctl lab: use with ssh -F; host keys are checked against known_hosts", ""]
    for h in hosts:
        lines += [
            f"Host {h.name} {h.address}",
            f"    HostName {h.address}",
            "    User root",
            f"    IdentityFile {admin_key}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {known_hosts}",
            "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes",
            "    HostKeyAlgorithms ssh-ed25519",
            "    BatchMode yes",
            "    ConnectTimeout 10",
            "",
        ]
    return "\n".join(lines)
