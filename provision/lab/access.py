"""Reaching into a running lab: BMC endpoint, InfiniBand tool environment, commands in hosts.

All of these read the lab's recorded state only; they start nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from provision.errors import LabError
from provision.execute.rundir import guard
from provision.lab import bmc
from provision.lab.fabric import client_env
from provision.lab.proc import alive
from provision.lab.state import HostRecord, LabPaths, LabState, load_state

IB_VARS = ("LD_PRELOAD", "IBSIM_SERVER_NAME", "IBSIM_SERVER_PORT", "SIM_HOST")


def running_state(lab_dir: str | Path) -> LabState:
    """The state of a lab that finished ``up``, or a LabError saying it is not up."""
    root = Path(lab_dir)
    state = load_state(root)
    if state is None:
        raise LabError(f"lab dir {root}: no lab is up here (no state.json)")
    if not state.complete:
        raise LabError(f"lab site {state.site}: the lab in {root} is not completely up; "
                       "run `gpuctl lab up` again or `gpuctl lab down`")
    return state


def bmc_endpoint(lab_dir: str | Path) -> tuple[str, str, str]:
    """``(base URL, user, password)`` of the lab's Redfish emulator."""
    state = running_state(lab_dir)
    if state.bmc is None:
        raise LabError(f"lab site {state.site}: no BMC emulator recorded")
    creds = bmc.credentials_for_use(LabPaths(Path(lab_dir)), state.bmc.credentials)
    return state.bmc.url, creds.user, creds.password


def host_of_hca(state: LabState, hca_id: str) -> HostRecord:
    for host in state.hosts.values():
        if hca_id in host.hca_ids:
            return host
    known = sorted(h for host in state.hosts.values() for h in host.hca_ids)
    raise LabError(f"lab site {state.site}: no host has HCA {hca_id!r} "
                   f"(known: {', '.join(repr(k) for k in known[:6])}{' ...' if len(known) > 6 else ''})")


def ib_env(hca_id: str, lab_dir: str | Path) -> dict[str, str]:
    """The variables that make a libibumad tool (ibstat, ibnetdiscover, sminfo, ...) talk to
    the lab's ibsim as HCA ``hca_id``: LD_PRELOAD, IBSIM_SERVER_NAME/PORT and SIM_HOST.
    Merge them into the environment of a command run inside the HCA's host namespace."""
    state = running_state(lab_dir)
    host_of_hca(state, hca_id)
    assert state.fabric is not None  # a complete lab has a fabric
    env = client_env(state.fabric.server, state.fabric.port, hca_id, base={})
    return {k: env[k] for k in IB_VARS}


def host_exec(lab_dir: str | Path, host: str, argv: Sequence[str], *,
              env: Mapping[str, str] | None = None, timeout: float = 30.0
              ) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside lab host ``host`` (its network, mount and UTS namespaces), as if
    on that machine; returns the completed process (output as text), any exit status."""
    state = running_state(lab_dir)
    record = state.hosts.get(host)
    if record is None:
        raise LabError(f"lab site {state.site}: no host {host!r} "
                       f"(hosts: {', '.join(sorted(state.hosts))})")
    if record.sshd is None or not alive(record.sshd):
        raise LabError(f"lab host {host}: not running (its sshd is gone); "
                       "run `gpuctl lab up` again")
    # under the run's child guard (when a run holds a directory); ``env`` is set by env(1)
    # for the command alone, not for the guard (an LD_PRELOAD is the command's)
    command = guard(["env", *(f"{k}={v}" for k, v in (env or {}).items()), "nsenter", "-t",
                     str(record.sshd.pid), "-n", "-m", "-u", "--", *argv])
    try:
        with tempfile.TemporaryDirectory(prefix="gpuctl-lab-") as scratch:  # umad2sim's sys-*
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False, cwd=scratch)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"lab host {host}: {argv[0]} did not finish within {timeout:g}s") from exc


def run_ib_tool(lab_dir: str | Path, hca_id: str, argv: Sequence[str], *,
                timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run an InfiniBand tool inside the host that owns ``hca_id``, attached as that HCA."""
    state = running_state(lab_dir)
    host = host_of_hca(state, hca_id)
    return host_exec(lab_dir, host.name, argv, env=ib_env(hca_id, lab_dir), timeout=timeout)
