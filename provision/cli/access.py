"""Which access file a command uses (only the CLI knows where they live).

``--access FILE``; else ``--lab-dir DIR``'s ``access.yaml``; else, unless ``--no-lab``, the
one ``gpuctl lab up SITE`` wrote into the site's default lab dir; else ``access.yaml`` next
to the site's ``site.yaml``; else none: the plan's addresses and the user's known_hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from provision.errors import UsageError
from provision.execute.access import FILE_NAME, Access, load

ACCESS_HELP = ("How the hosts are reached (ssh/BMC per host, credential files, Ansible "
               "overrides; see README) [default: the lab's when `gpuctl lab up SITE` is up, "
               f"else SITE/{FILE_NAME} when present, else the plan's addresses].")


def access_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--access``, ``--lab-dir`` and ``--no-lab`` (in that order in --help)."""
    for opt in reversed([
        click.option("--access", "access_file", default=None, help=ACCESS_HELP,
                     type=click.Path(path_type=Path, dir_okay=False)),
        click.option("--lab-dir", type=click.Path(path_type=Path, file_okay=False),
                     default=None, help=f"Use this lab (its {FILE_NAME}) [default: the "
                     "site's lab when it is up]."),
        click.option("--no-lab", is_flag=True, help="Ignore a running lab of this site."),
    ]):
        fn = opt(fn)
    return fn


def _lab_file(lab_dir: Path, *, required: bool) -> Path | None:
    path = lab_dir / FILE_NAME
    if path.is_file():
        return path
    if (lab_dir / "state.json").exists():
        raise UsageError(f"lab dir {lab_dir}: a lab is recorded but has no {FILE_NAME} (not "
                         "completely up, or brought up by an older gpuctl); run `gpuctl lab "
                         "up` again")
    if required:
        raise UsageError(f"--lab-dir {lab_dir}: no lab is up there (no {FILE_NAME})")
    return None


def find_access(site: Path, site_dir: Path, access_file: Path | None, lab_dir: Path | None,
                no_lab: bool) -> Access:
    """The access file of this command line (see the module doc); ``site`` as given."""
    if access_file is not None:
        if lab_dir is not None:
            raise UsageError("--access and --lab-dir: give one of them")
        return load(access_file)
    if lab_dir is not None:
        found = _lab_file(lab_dir, required=True)
        assert found is not None
        return load(found)
    if not no_lab:
        from provision.cli.lab import lab_dir_of

        found = _lab_file(lab_dir_of(str(site)), required=False)
        if found is not None:
            return load(found)
    own = site_dir / FILE_NAME
    return load(own) if own.is_file() else Access()
