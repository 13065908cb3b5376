"""Where gpuctl's data files are: templates, playbooks, the Pulumi stacks, the built-in catalog.

They are package data found through :mod:`importlib.resources`, so a wheel installed anywhere
and an editable install of the checkout find the same files. In the checkout, templates/,
playbooks/ and stacks/ sit at the repository top and setup.py installs them as the packages
``provision.templates``, ``provision.playbooks`` and ``provision.stacks``; the catalog is
``provision.catalog``. Ansible, Jinja2's loader and Pulumi need real directories, so the
lookups return paths and fail with one line when the package is not on a file system (a
zipped install).
"""

from __future__ import annotations

import json
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import unquote, urlparse

from provision.errors import GpuctlError

DISTRIBUTION = "gpuctl"

TEMPLATES = "provision.templates"
PLAYBOOKS = "provision.playbooks"
STACKS = "provision.stacks"
CATALOG = "provision.catalog"


def _directory(package: str) -> Path:
    try:
        root = resources.files(package)
    except ModuleNotFoundError as exc:
        raise GpuctlError(f"gpuctl's data package {package} is not installed; reinstall "
                          f"gpuctl (pip install -e . in a checkout)") from exc
    if not isinstance(root, Path) or not root.is_dir():
        raise GpuctlError(f"gpuctl's data package {package} is not a directory on disk "
                          f"({root}); install gpuctl unpacked (pip install)")
    return root


def templates_dir() -> Path:
    """The Jinja2 templates of the renderers (templates/ in the checkout)."""
    return _directory(TEMPLATES)


def playbooks_dir() -> Path:
    """The phase playbooks, with their roles in ``roles/`` (playbooks/ in the checkout)."""
    return _directory(PLAYBOOKS)


def stack_dir(name: str = "platform") -> Path:
    """The Pulumi project ``stacks/<name>`` (Pulumi.yaml, __main__.py, components.py)."""
    return _directory(STACKS) / name


def catalog_files() -> Traversable:
    """The built-in hardware catalog and version matrix (``*.yaml``), read as text."""
    return resources.files(CATALOG)


def source_checkout() -> Path | None:
    """The checkout this gpuctl runs from when it is an editable install (``pip install -e``),
    from the install's own record (PEP 610 ``direct_url.json``); None for a wheel install.

    Only a record that points at the ``provision`` package actually imported counts, so a
    stale ``gpuctl.egg-info`` or a second install elsewhere is never taken for it.
    """
    here = Path(__file__).resolve().parent
    for dist in metadata.distributions(name=DISTRIBUTION):
        text = dist.read_text("direct_url.json")
        if not text:
            continue
        try:
            record = json.loads(text)
        except ValueError:
            continue
        url = record.get("url", "") if isinstance(record, dict) else ""
        editable = isinstance(record, dict) and record.get("dir_info", {}).get("editable")
        if editable and url.startswith("file://"):
            root = Path(unquote(urlparse(url).path))
            if (root / "provision").resolve() == here:
                return root
    return None
