"""Per-node first-boot secrets on disk (side effects of ``gpuctl image seed``).

``SITE/.gpuctl/secrets/hostkeys/<host>`` (0600, in a 0700 directory) is the node's SSH host
key, made once and kept: re-seeding never rotates a key (``rotate`` does). ``SITE/.gpuctl/
known_hosts`` lists every seeded node's public key under its name and in-band address; gpuctl's
SSH connections to a real site verify against it. ``SITE/.gpuctl/seeds/<host>/`` holds the
rendered seed (0600 files: it carries the private key). Nothing here prints a private key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from provision.image.seeds import HostKey
from provision.sshkeys import KnownHost, generate_ed25519, known_hosts_text, write_private

SECRETS = "secrets"
SEEDS = "seeds"
KNOWN_HOSTS = "known_hosts"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def host_key(state: Path, host: str, *, rotate: bool = False) -> HostKey:
    """The node's host key, generated on first use (or when ``rotate``)."""
    folder = _private_dir(_private_dir(state / SECRETS) / "hostkeys")
    path = folder / host
    pub = path.with_name(host + ".pub")
    if rotate or not path.is_file() or not pub.is_file():
        generate_ed25519(path, comment=f"gpuctl-hostkey-{host}")
    os.chmod(path, 0o600)
    fields = pub.read_text().split()
    return HostKey(private=path.read_text(), public=f"{fields[0]} {fields[1]}")


def write_seed(state: Path, host: str, files: Mapping[str, str]) -> Path:
    folder = _private_dir(_private_dir(state / SEEDS) / host)
    for name, text in files.items():
        write_private(folder / name, text)
    return folder


def write_known_hosts(state: Path, hosts: Sequence[KnownHost]) -> Path:
    """Merge ``hosts`` into ``SITE/.gpuctl/known_hosts`` (other hosts' lines are kept)."""
    path = state / KNOWN_HOSTS
    names = {h.name for h in hosts}
    kept = []
    if path.is_file():
        kept = [ln + "\n" for ln in path.read_text().splitlines()
                if ln.strip() and ln.split(",", 1)[0].split()[0] not in names]
    write_private(path, "".join(kept) + known_hosts_text(hosts), mode=0o644)
    return path
