"""Run ``ibnetdiscover`` on this machine and return its topology text.

The command is an argv list with a bounded timeout; its environment is this process's, so
the simulated fabric of the lab works unchanged: ``LD_PRELOAD`` (umad2sim), ``SIM_HOST``
(which CA of the simulator to attach as) and ``IBSIM_SERVER_NAME``/``IBSIM_SERVER_PORT``
(ibsim in remote mode) pass through, and ``extra_env`` can set them explicitly. The runner
is passed in (``subprocess.run`` by default) so tests can replace it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from provision.errors import ExecutionError
from provision.execute.rundir import guard

DEFAULT_TIMEOUT_S = 60.0
SIM_ENV = ("LD_PRELOAD", "SIM_HOST", "IBSIM_SERVER_NAME", "IBSIM_SERVER_PORT")
"""Variables the simulated fabric needs; they pass through from the caller's environment."""
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def find_tool(name: str = "ibnetdiscover") -> str:
    """Absolute path of ``name`` on PATH or in the sbin directories (not on a user's PATH)."""
    found = shutil.which(name) or next(
        (p for d in SBIN_DIRS if os.access(p := os.path.join(d, name), os.X_OK)), None)
    if found is None:
        raise ExecutionError(f"{name} not found on PATH or in {', '.join(SBIN_DIRS)}; "
                             "install infiniband-diags")
    return found


def discover_argv(tool: str, ca: str | None = None, port: int | None = None,
                  extra: Sequence[str] = ()) -> list[str]:
    """``ibnetdiscover [-C CA] [-P PORT] [extra...]``."""
    argv = [tool]
    if ca:
        argv += ["-C", ca]
    if port is not None:
        argv += ["-P", str(port)]
    return argv + list(extra)


def tool_env(extra_env: Mapping[str, str] | None = None,
             base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tool's environment: ``base`` (default: ours) plus ``extra_env``."""
    env = dict(os.environ if base is None else base)
    if extra_env:
        env.update(extra_env)
    return env


def run_ibnetdiscover(*, ca: str | None = None, port: int | None = None,
                      timeout: float = DEFAULT_TIMEOUT_S,
                      extra_env: Mapping[str, str] | None = None,
                      extra_args: Sequence[str] = (), tool: str | None = None,
                      runner: Runner | None = None) -> str:
    """Run ``ibnetdiscover`` and return its stdout; ExecutionError (one line) on failure."""
    argv = discover_argv(tool or find_tool(), ca, port, extra_args)
    run: Runner = runner or subprocess.run
    kwargs: dict[str, Any] = {"capture_output": True, "text": True, "timeout": timeout,
                              "check": False, "env": tool_env(extra_env)}
    try:
        # umad2sim fakes sysfs as ./sys-<pid> in the working directory: keep it out of the
        # user's checkout.
        with tempfile.TemporaryDirectory(prefix="gpuctl-ib-") as scratch:
            result = run(guard(argv), cwd=scratch, **kwargs)  # dies with gpuctl
    except subprocess.TimeoutExpired as exc:
        raise ExecutionError(f"ibnetdiscover did not finish within {timeout:g} s "
                             f"({' '.join(argv)})") from exc
    except OSError as exc:
        raise ExecutionError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    if result.returncode != 0 or not result.stdout.strip():
        lines = [ln for ln in (result.stderr or "").splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else "no output"
        raise ExecutionError(f"ibnetdiscover failed (exit {result.returncode}): {why}")
    return str(result.stdout)
