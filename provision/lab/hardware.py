"""Give every lab host the hardware personality its catalog type describes.

The lab's hosts have no GPUs; burn-in talks to the clearly labelled simulator in
provision/lab/hwsim/. This module maps the plan's node types to simulator personalities and
installs the simulated commands into each host's private /usr/local/bin (the ``host_setup``
hook of :func:`provision.lab.up`).
"""

from __future__ import annotations

import sys

from provision.lab.hostfs import HostRoot, HostSetup
from provision.lab.hwsim.install import install_commands
from provision.lab.hwsim.personality import Personality, default_personality, write_personality
from provision.models.catalog import SPEED_GBPS
from provision.plan.build import Plan

SIM_SUBDIR = "hwsim"


def personality_for(plan: Plan, host: str) -> Personality:
    """What the simulator should report for ``host``, from its catalog type and the site."""
    node = next(n for n in plan.nodes if n.name == host)
    ntype = plan.catalog.nodes[node.type]
    sw = plan.site.software
    rate = SPEED_GBPS[ntype.compute_hcas[0].speed] if ntype.compute_hcas else 200
    compute = plan.site.fabrics.compute
    if compute is not None:  # a port runs at the slower of HCA and fabric
        rate = min(rate, SPEED_GBPS[compute.speed])
    return default_personality(
        host, ntype.gpu_model or "", gpu_count=ntype.gpus, gpu_memory_mib=ntype.gpu_memory_gib * 1024,
        driver_version=sw.driver_version, cuda_version=sw.cuda,
        hca_count=len(ntype.compute_hcas), hca_rate_gbps=rate)


def hwsim_setup(plan: Plan) -> HostSetup:
    """A ``host_setup`` hook: personality into the shared sim dir, commands into the host."""

    def setup(host: HostRoot) -> None:
        sim_dir = host.lab_dir / SIM_SUBDIR
        write_personality(sim_dir, host.name, personality_for(plan, host.name))
        # The simulator's ibstat reports the personality and its faults (rate, state); ibsim's
        # own would show simulator values (e.g. "Rate: 104") that no real HCA reports.
        install_commands(host.root / "usr/local/bin", sim_dir, python=sys.executable,
                         extra=("ibstat",))

    return setup
