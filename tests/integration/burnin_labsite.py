"""A burn-in lab of its own: a copy of ``inventory/sites/lab`` under a site name of its own
(so a lab someone brought up for ``lab`` is never touched, and this one never collides with
it by name), stood up with the labelled hardware simulator on every host."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB_SITE = ROOT / "inventory" / "sites" / "lab"


def own_site(parent: Path, prefix: str) -> Path:
    """``parent/<prefix><pid>/site.yaml``: the lab site renamed (host names stay lab-gpu-NN)."""
    name = f"{prefix}{os.getpid() % 100000}"
    site = parent / name
    shutil.copytree(LAB_SITE, site, ignore=shutil.ignore_patterns(".gpuctl", "generated"))
    text = (site / "site.yaml").read_text()
    assert "\n  name: lab\n" in text
    (site / "site.yaml").write_text(text.replace("\n  name: lab\n", f"\n  name: {name}\n", 1))
    return site


@contextmanager
def burnin_lab(site: Path, lab_dir: Path) -> Iterator[Path]:
    """``site``'s lab at ``lab_dir`` (hosts with simulated GPUs and HCAs), always taken down."""
    from provision import lab as labmod
    from provision.lab.from_plan import lab_spec_for_site
    from provision.lab.hardware import hwsim_setup
    from provision.lab.hostfs import HostRoot
    from provision.lab.hwsim import install_commands
    from provision.plan.load import load_and_plan

    _, plan = load_and_plan(site)
    base = hwsim_setup(plan)

    def setup(host: HostRoot) -> None:
        base(host)
        # ibsim's own ibstat cannot show an HDR rate (it prints 104) nor a simulated fault;
        # the simulator's ibstat reads the injected faults (ibnetdiscover stays the real one)
        install_commands(host.root / "usr/local/bin", host.lab_dir / "hwsim", extra=("ibstat",))

    spec = lab_spec_for_site(str(site))
    try:
        labmod.up(spec, lab_dir, host_setup=setup)
        yield lab_dir
    finally:
        labmod.down(spec.site, lab_dir)
