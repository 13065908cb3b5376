"""A local apt repository of trivial packages with the REAL names and versions of the NVIDIA
stack, for proving the Ansible roles without GPUs or NVIDIA's repositories.

    repo = build_repo(tmp / "repo", stack_packages())   # flat repo: Packages(.gz) + Release
    source = apt_source(repo)     # {name, uris: file:///..., suites: ./, trusted: true}

Each package is built with ``dpkg-deb --build`` and indexed with ``dpkg-scanpackages``; the
``Release`` file (Origin ``NVIDIA``, Label ``NVIDIA CUDA``, like the CUDA repository) carries
the index hashes, so ``apt-get update`` accepts it as a ``Trusted: yes`` source. Contents are a
marker file per package, plus the few files the roles check (unit files, ``nvidia-smi`` and
``nv-fabricmanager`` scripts that print their version). No ``shell=True``; argv lists only.
"""

from __future__ import annotations

from testrepo.build import (
    DRIVER_NEW,
    DRIVER_OLD_FM,
    DRIVER_VERSION,
    Pkg,
    apt_source,
    build_repo,
    nccl_tests_source,
    stack_packages,
)

__all__ = ["DRIVER_NEW", "DRIVER_OLD_FM", "DRIVER_VERSION", "Pkg", "apt_source", "build_repo",
           "nccl_tests_source", "stack_packages"]
