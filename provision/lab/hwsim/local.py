"""The hardware simulator on this machine without a lab: for tests and for trying probes.

``LocalSim.create(root, personalities)`` writes the personalities and the command wrappers
under ``root``; ``run(host, argv)`` runs a simulated command as that host (via
``GPUCTL_HWSIM_HOST``) in a subprocess, bounded by a timeout; ``call`` runs it in this
process instead (much faster; not for the perftest tools, which wait on a peer). No root, no
namespaces. ``epoch`` pins the timestamps the tools print (``SOURCE_DATE_EPOCH``).
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from provision.lab.hwsim.faults import Fault, clear_faults, set_fault
from provision.lab.hwsim.install import COMMANDS, OPTIONAL_COMMANDS, install_commands
from provision.lab.hwsim.personality import Personality, write_personality
from provision.lab.hwsim.state import ENV_DIR, ENV_HOST, ENV_TIMEOUT, run_tool


@dataclass(frozen=True)
class LocalSim:
    """A simulator directory plus its command wrappers, usable from this machine."""

    sim_dir: Path
    bin_dir: Path
    peer_timeout_s: float = 30.0
    epoch: int | None = None

    @classmethod
    def create(
        cls,
        root: Path,
        hosts: Iterable[Personality],
        python: str = sys.executable,
        peer_timeout_s: float = 30.0,
        epoch: int | None = None,
    ) -> LocalSim:
        sim = cls(root / "hwsim", root / "bin", peer_timeout_s, epoch)
        for facts in hosts:
            write_personality(sim.sim_dir, facts.hostname, facts)
        install_commands(sim.bin_dir, sim.sim_dir, python, extra=tuple(OPTIONAL_COMMANDS))
        return sim

    def _vars(self, host: str) -> dict[str, str]:
        env = {ENV_DIR: str(self.sim_dir), ENV_HOST: host, ENV_TIMEOUT: str(self.peer_timeout_s)}
        if self.epoch is not None:
            env["SOURCE_DATE_EPOCH"] = str(self.epoch)
        return env

    def env(self, host: str) -> dict[str, str]:
        return {**os.environ, "LC_ALL": "C", **self._vars(host)}

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [str(self.bin_dir / argv[0]), *argv[1:]]

    def run(
        self, host: str, argv: Sequence[str], timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run simulated command ``argv`` as ``host``; stdout/stderr captured as text."""
        return subprocess.run(
            self.argv(argv),
            env=self.env(host),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, host: str, argv: Sequence[str]) -> subprocess.Popen[str]:
        """Start simulated command ``argv`` as ``host`` in the background (e.g. a perftest
        server); the caller waits on it with a timeout."""
        return subprocess.Popen(
            self.argv(argv),
            env=self.env(host),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def call(self, host: str, argv: Sequence[str]) -> tuple[int, str, str]:
        """Run simulated command ``argv`` as ``host`` in this process: (exit code, stdout,
        stderr). Sets the simulator's environment variables only for the call."""
        module = {**COMMANDS, **OPTIONAL_COMMANDS}[argv[0]]
        main = importlib.import_module(f"provision.lab.hwsim.{module}").main
        wanted = self._vars(host)
        saved = {key: os.environ.get(key) for key in wanted}
        out, err = io.StringIO(), io.StringIO()
        os.environ.update(wanted)
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = run_tool(main, list(argv[1:]))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return code, out.getvalue(), err.getvalue()

    def fault(self, host: str, kind: str, **params: int | str | None) -> Fault:
        return set_fault(self.sim_dir, host, kind, **params)

    def clear(self, host: str | None = None) -> list[str]:
        return clear_faults(self.sim_dir, host)
