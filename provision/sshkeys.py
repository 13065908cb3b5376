"""SSH key material: ed25519 key pairs, private files (0600), known_hosts lines.

Used by imaging (each node's pre-generated host key) and by the lab (its admin key and hosts).
Clients always verify host keys against a ``known_hosts``; nothing here turns checking off.
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
