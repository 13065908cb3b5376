"""Site model -> image recipes (pure): what ``gpuctl image build`` asks mmdebstrap for.

A node group boots the ``images:`` entry it names, or, when it names none, a default image of
the site's ``software.os`` from the public Ubuntu archive (an air-gapped site names its own
mirror in an ``images:`` entry instead). A recipe's key is a hash of everything that goes
into the build, so an image is rebuilt exactly when its recipe changes.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

from provision.errors import UsageError
from provision.loader import LoadedSite

ARCH = "amd64"
UBUNTU_SUITES = {"ubuntu-22.04": "jammy", "ubuntu-24.04": "noble"}
UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"
UBUNTU_KEYRING = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
DEFAULT_PACKAGES = ("systemd-sysv", "udev", "openssh-server", "python3", "cloud-init",
                    "netplan.io", "linux-image-generic", "e2fsprogs")
"""What the default image holds: a kernel, systemd, sshd, Python for Ansible, cloud-init."""


@dataclass(frozen=True)
class Recipe:
    name: str
    distribution: str
    suite: str
    mirror: str
    components: tuple[str, ...]
    variant: str
    packages: tuple[str, ...]
    keyring: str | None
    architecture: str = ARCH

    def key(self) -> str:
        """16 hex digits of the sha256 of the recipe (same recipe, same key)."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["components"] = list(self.components)
        d["packages"] = list(self.packages)
        return d


def default_recipe(os_name: str) -> Recipe:
    suite = UBUNTU_SUITES[os_name]
    return Recipe(name=os_name.replace(".", ""), distribution="ubuntu", suite=suite,
                  mirror=UBUNTU_MIRROR, components=("main", "universe"), variant="minbase",
                  packages=tuple(sorted(DEFAULT_PACKAGES)), keyring=UBUNTU_KEYRING)


def recipes(loaded: LoadedSite, group: str | None = None) -> list[tuple[Recipe, list[str]]]:
    """Each image the site's node groups boot (or only ``group``'s), with the groups using it,
    in node-group order. Keyring paths are relative to the site directory."""
    site = loaded.site
    names = [g.name for g in site.node_groups]
    if group is not None and group not in names:
        raise UsageError(f"{loaded.path}: no node group {group!r} (groups: {', '.join(names)})")
    images = {m.name: m for m in site.images}
    out: dict[str, tuple[Recipe, list[str]]] = {}
    for g in site.node_groups:
        if group is not None and g.name != group:
            continue
        if g.image is None:
            recipe = default_recipe(site.software.os)
        else:
            m = images[g.image]  # lint GPU127 rejects an unknown name before this runs
            keyring = None
            if m.keyring is not None:
                keyring = str((loaded.path.parent / m.keyring).absolute())
            recipe = Recipe(name=m.name, distribution=m.distribution, suite=m.suite,
                            mirror=m.mirror, components=tuple(m.components),
                            variant=m.variant, packages=tuple(sorted(set(m.packages))),
                            keyring=keyring)
        out.setdefault(recipe.name, (recipe, []))[1].append(g.name)
    return list(out.values())


def mmdebstrap_argv(recipe: Recipe, target: Path) -> list[str]:
    """The mmdebstrap command that builds ``recipe`` into the tarball ``target``."""
    argv = ["mmdebstrap", f"--variant={recipe.variant}",
            f"--architectures={recipe.architecture}",
            f"--components={','.join(recipe.components)}", "--format=tar"]
    if recipe.packages:
        argv.append(f"--include={','.join(recipe.packages)}")
    if recipe.keyring:
        argv.append(f"--keyring={recipe.keyring}")
    # A mirror line rather than a bare URL, so file:// mirrors and components work alike.
    source = f"deb {recipe.mirror} {recipe.suite} {' '.join(recipe.components)}"
    return [*argv, recipe.suite, str(target), source]


def describe(recipe: Recipe, target: Path) -> str:
    return shlex.join(mmdebstrap_argv(recipe, target))
