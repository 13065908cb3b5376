"""The local lab: a whole simulated GPU site on one Linux machine, from a :class:`LabSpec`.

Hosts are network namespaces on a Linux bridge, each with private overlays of /etc, /var,
/opt, /usr and /root and its own OpenSSH server; the BMCs are one sushy-tools Redfish
emulator on loopback; the InfiniBand fabric is ibsim with OpenSM through umad2sim.

    state = up(spec)                  # idempotent; rolls back on failure
    print(status(spec.site).ok)
    url, user, password = bmc_endpoint(state.lab_dir)
    run_ib_tool(state.lab_dir, "lab-gpu-01 mlx5_0", ["ibnetdiscover"])
    down(spec.site)

Needs root on Linux. See ``provision/lab/state.py`` for the lab dir layout.
"""

from __future__ import annotations

from pathlib import Path

from provision.lab.access import bmc_endpoint, host_exec, ib_env, run_ib_tool, running_state
from provision.lab.hostfs import HostRoot, HostSetup
from provision.lab.lifecycle import default_lab_dir, down, require_root, resolve_lab_dir, up
from provision.lab.spec import LabHost, LabSpec, validate
from provision.lab.state import LabState
from provision.lab.status import (
    BmcStatus,
    FabricStatus,
    HostStatus,
    LabStatus,
    SubnetStatus,
    lab_status,
)


def status(site: str, lab_dir: str | Path | None = None) -> LabStatus:
    """Check the lab of ``site`` (under ``lab_dir``, default ``.lab/<site>``) against its state."""
    require_root()
    return lab_status(site, resolve_lab_dir(site, lab_dir))


__all__ = [
    "BmcStatus", "FabricStatus", "HostRoot", "HostSetup", "HostStatus", "LabHost", "LabSpec",
    "LabState", "LabStatus", "SubnetStatus", "bmc_endpoint", "default_lab_dir", "down",
    "host_exec", "ib_env", "require_root", "resolve_lab_dir", "run_ib_tool", "running_state",
    "status", "up", "validate",
]
