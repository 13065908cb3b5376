"""What a simulated command knows when it runs: which host it is, that host's hardware, faults.

A command finds the simulator directory in ``GPUCTL_HWSIM_DIR`` (set by the generated wrapper
scripts) and its host name in ``GPUCTL_HWSIM_HOST`` or else ``/etc/hostname`` (each lab host has
its own /etc). ``HostState`` answers the questions the tools ask ("is GPU 3 there?", "what rate
does mlx5_2 link at?") from the personality and the injected faults, in one place.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.errors import GpuctlError, LabError
from provision.lab.hwsim.faults import Fault, read_faults
from provision.lab.hwsim.personality import (
    LABEL,
    Personality,
    Product,
    known_hosts,
    product,
    read_personality,
    rng,
)

ENV_DIR = "GPUCTL_HWSIM_DIR"
ENV_HOST = "GPUCTL_HWSIM_HOST"
ENV_TIMEOUT = "GPUCTL_HWSIM_TIMEOUT"
HOSTNAME_FILE = Path("/etc/hostname")


class SimExit(Exception):
    """End a simulated command with ``code`` after printing ``message`` to stderr (if any)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sim_dir_from_env() -> Path:
    value = os.environ.get(ENV_DIR)
    if not value:
        raise LabError(
            f"{ENV_DIR} is not set: run the simulated tools through the wrappers "
            "that install_commands() writes"
        )
    return Path(value)


def current_host() -> str:
    """This host's name: ``GPUCTL_HWSIM_HOST``, else the first word of /etc/hostname."""
    host = os.environ.get(ENV_HOST, "").strip()
    if host:
        return host
    try:
        words = HOSTNAME_FILE.read_text(encoding="utf-8").split()
    except OSError as exc:
        raise LabError(f"cannot tell which lab host this is: set {ENV_HOST} ({exc})") from exc
    if not words:
        raise LabError(f"{HOSTNAME_FILE} is empty: set {ENV_HOST}")
    return words[0]


def socket_timeout() -> float:
    """Upper bound in seconds on any wait for a peer (``GPUCTL_HWSIM_TIMEOUT``, default 30)."""
    try:
        return max(0.1, float(os.environ.get(ENV_TIMEOUT, "30")))
    except ValueError:
        return 30.0


def now() -> float:
    """Wall-clock time for timestamps; ``SOURCE_DATE_EPOCH`` pins it for reproducible output."""
    pinned = os.environ.get("SOURCE_DATE_EPOCH")
    return float(pinned) if pinned and pinned.isdigit() else time.time()


@dataclass(frozen=True)
class HostState:
    """One simulated host: its personality and its current faults."""

    sim_dir: Path
    host: str
    facts: Personality
    faults: tuple[Fault, ...]

    @classmethod
    def load(cls, sim_dir: Path, host: str) -> HostState:
        """Read ``host``'s state; a short host name also matches ``host.domain`` files."""
        name = host
        if not (sim_dir / "hosts" / f"{host}.json").exists():
            short = host.split(".")[0]
            matches = [h for h in known_hosts(sim_dir) if h.split(".")[0] == short]
            if len(matches) == 1:
                name = matches[0]
        facts = read_personality(sim_dir, name)
        return cls(sim_dir, name, facts, tuple(read_faults(sim_dir, name)))

    @property
    def product(self) -> Product:
        return product(self.facts.gpu_product)

    def _of(self, kind: str) -> list[Fault]:
        return [f for f in self.faults if f.kind == kind]

    def gpus(self) -> list[int]:
        """Indexes of the GPUs the driver still sees, in order (renumbered like the driver)."""
        missing = {int(f.params["gpu"]) for f in self._of("gpu-missing")}
        return [i for i in range(self.facts.gpu_count) if i not in missing]

    def hca_state(self, index: int) -> str:
        """Port state of mlx5_<index>: Active, Down or Polling."""
        for f in self._of("hca-down"):
            if int(f.params["hca"]) == index:
                return str(f.params.get("state", "Down"))
        return "Active"

    def hca_rate(self, index: int) -> int:
        """Link rate of mlx5_<index> in Gb/s (half the personality's with hca-200g)."""
        rate = self.facts.hca_rate_gbps
        if any(int(f.params["hca"]) == index for f in self._of("hca-200g")):
            return rate // 2
        return rate

    def ecc_gpus(self) -> set[int]:
        return {int(f.params["gpu"]) for f in self._of("ecc")}

    def nvlink_down(self, gpu: int) -> bool:
        return any(
            "gpu" not in f.params or int(f.params["gpu"]) == gpu for f in self._of("nvlink-down")
        )

    def any_nvlink_down(self) -> bool:
        return bool(self._of("nvlink-down"))

    def dcgm_failures(self) -> list[tuple[int, str | None]]:
        return [
            (int(f.params["gpu"]), str(f.params["test"]) if "test" in f.params else None)
            for f in self._of("dcgm-fail")
        ]

    def nccl_factor(self) -> float:
        """Fraction of its healthy busbw this node lets a collective reach (slow-nccl)."""
        slow = self._of("slow-nccl")
        if not slow:
            return 1.0
        if "percent" in slow[0].params:
            return int(slow[0].params["percent"]) / 100.0
        return round(rng(self.host, "slow-nccl").uniform(0.42, 0.58), 3)


def load_current() -> HostState:
    return HostState.load(sim_dir_from_env(), current_host())


def run_tool(main: Callable[[Sequence[str]], int], argv: Sequence[str] | None = None) -> int:
    """Run a simulated tool's ``main`` and turn SimExit/GpuctlError into stderr + exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return main(args)
    except SimExit as exc:
        if exc.message:
            print(exc.message, file=sys.stderr)
        return exc.code
    except GpuctlError as exc:
        print(f"{LABEL}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 141
