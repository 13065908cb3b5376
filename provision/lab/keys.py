"""SSH material of a lab: the admin key pair, per-host host keys, known_hosts, ssh_config.

Clients always verify host keys against the lab's ``known_hosts``; nothing here turns
host-key checking off.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KnownHost:
    name: str
    address: str  # without prefix
    public_key: str  # "ssh-ed25519 AAAA..." (no comment)


def generate_ed25519(path: Path, *, comment: str) -> str:
    """Create (or replace) an ed25519 key pair at ``path`` (OpenSSH format, private key mode
    0600, public key in ``path.pub``); return the public key line without the comment."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    write_private(path, private.decode())
    path.with_name(path.name + ".pub").write_text(f"{public} {comment}\n")
    return public


def public_key(private_key: Path) -> str:
    """``"<type> <base64>"`` of the ``.pub`` next to ``private_key``, without the comment."""
    fields = private_key.with_name(private_key.name + ".pub").read_text().split()
    return f"{fields[0]} {fields[1]}"


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file that must never be readable by others (created with ``mode``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def known_hosts_text(hosts: Sequence[KnownHost]) -> str:
    """One line per host, matching both its name and its address."""
    return "".join(f"{h.name},{h.address} {h.public_key}\n" for h in hosts)


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
