"""Run the platform stack (stacks/platform) through the Pulumi Automation API.

``preview``/``up`` need the Pulumi CLI (the engine); without it they raise ExecutionError with
one line saying how to install it. ``dry_run_resources`` needs no CLI: it runs the same
program under Pulumi's mocks and lists the resources it would register.

The stack's config file (``Pulumi.<site>.yaml``) is written next to ``Pulumi.yaml`` before
each run, so the program reads exactly the config ``gpuctl platform config`` would write.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from provision.errors import ExecutionError
from provision.plan.build import Plan
from provision.platform.config import PROJECT, stack_config, stack_file
from provision.platform.model import PlatformConfig
from provision.resources import stack_dir

STACK_DIR = stack_dir("platform")
"""The Pulumi project of the platform (Pulumi.yaml, __main__.py, components.py), package data."""

INSTALL_HINT = ("install the Pulumi CLI: curl -fsSL https://get.pulumi.com | sh, or see "
                "https://www.pulumi.com/docs/install/")

Operation = Literal["preview", "up"]


@dataclass(frozen=True)
class RecordedResource:
    """One resource the program registered under mocks: its type token, name and inputs."""

    type: str
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)


@contextmanager
def _stack_on_path(stack_dir: Path) -> Iterator[None]:
    added = str(stack_dir) not in sys.path
    if added:
        sys.path.insert(0, str(stack_dir))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(stack_dir))


def load_components(stack_dir: Path = STACK_DIR) -> ModuleType:
    """Import ``components.py`` of the stack directory (it is not part of the package)."""
    path = stack_dir / "components.py"
    if not path.is_file():
        raise ExecutionError(f"{path}: the platform stack's components module is missing")
    spec = importlib.util.spec_from_file_location("gpuctl_platform_components", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ExecutionError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    with _stack_on_path(stack_dir):
        spec.loader.exec_module(module)
    return module


def collect_resources(cfg: PlatformConfig, stack_dir: Path = STACK_DIR
                      ) -> list[RecordedResource]:
    """Run the platform component under Pulumi mocks; every registered resource, in order."""
    try:
        import pulumi
    except ModuleNotFoundError as exc:
        raise ExecutionError("the platform needs the Pulumi SDK: pip install "
                             "'gpuctl[platform]'") from exc
    components = load_components(stack_dir)
    recorded: list[RecordedResource] = []

    class Recorder(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs
                     ) -> tuple[str, dict[str, Any]]:
            recorded.append(RecordedResource(args.typ, args.name, dict(args.inputs)))
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs
                 ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            return {}, None

    pulumi.runtime.set_mocks(Recorder(), project=PROJECT, stack=cfg.site, preview=False)

    @pulumi.runtime.test  # type: ignore[untyped-decorator,unused-ignore]
    def program() -> Any:
        comp = components.build(cfg)
        return comp.urn

    program()
    return recorded


def dry_run_resources(cfg: PlatformConfig, stack_dir: Path = STACK_DIR) -> list[tuple[str, str]]:
    """``(type, name)`` of every resource the stack would manage, sorted; no CLI needed."""
    return sorted((r.type, r.name) for r in collect_resources(cfg, stack_dir))


def require_cli() -> str:
    """Path of the ``pulumi`` CLI, or ExecutionError with one line on how to install it."""
    found = shutil.which("pulumi")
    if found is None:
        raise ExecutionError(INSTALL_HINT)
    return found


def write_stack_config(cfg: PlatformConfig, stack_dir: Path = STACK_DIR) -> Path:
    """Write ``Pulumi.<site>.yaml`` into the stack directory; returns its path."""
    path = stack_dir / f"Pulumi.{cfg.site}.yaml"
    try:
        path.write_text(stack_file(cfg), encoding="utf-8")
    except OSError as exc:
        raise ExecutionError(f"{path}: cannot write the stack config: {exc.strerror}") from exc
    return path


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    return (errors or lines or ["(no output)"])[-1]


def run(op: Operation, cfg: PlatformConfig, *, stack_dir: Path = STACK_DIR,
        env: Mapping[str, str] | None = None,
        on_output: Callable[[str], None] | None = None) -> dict[str, int]:
    """``pulumi preview`` or ``pulumi up`` of the site's stack; returns the change counts.

    ``env`` is passed to the CLI (e.g. ``PULUMI_BACKEND_URL``, ``PULUMI_CONFIG_PASSPHRASE``,
    ``KUBECONFIG``). Every failure is an ExecutionError with one line.
    """
    require_cli()
    from pulumi import automation as auto

    write_stack_config(cfg, stack_dir)
    opts = auto.LocalWorkspaceOptions(env_vars=dict(env or {}))
    try:
        stack = auto.create_or_select_stack(stack_name=cfg.site, work_dir=str(stack_dir),
                                            opts=opts)
        if op == "preview":
            result = stack.preview(on_output=on_output)
            return {str(k): int(v) for k, v in result.change_summary.items()}
        up = stack.up(on_output=on_output)
        return {str(k): int(v) for k, v in (up.summary.resource_changes or {}).items()}
    except auto.errors.CommandError as exc:
        raise ExecutionError(f"pulumi {op} of stack {cfg.site}: "
                             f"{_first_line(str(exc))}") from exc


@dataclass(frozen=True)
class PhaseResult:
    """What the platform phase did: the resources (dry run) or the engine's change counts."""

    site: str
    operation: str
    resources: list[tuple[str, str]] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)


def provision_platform(plan: Plan, *, dry_run: bool = False, preview: bool = False,
                       host_installs_driver: bool = True, env: Mapping[str, str] | None = None,
                       on_output: Callable[[str], None] | None = None,
                       stack_dir: Path = STACK_DIR) -> PhaseResult:
    """The ``platform`` phase of ``gpuctl provision site``: one call from a Plan.

    ``dry_run`` lists the resources under mocks (no CLI, no cluster); otherwise ``preview``
    or ``up`` run through the Automation API (ExecutionError with one line on failure).
    """
    cfg = stack_config(plan, host_installs_driver=host_installs_driver)
    if dry_run:
        return PhaseResult(cfg.site, "dry-run", resources=dry_run_resources(cfg, stack_dir))
    op: Operation = "preview" if preview else "up"
    return PhaseResult(cfg.site, op, changes=run(op, cfg, stack_dir=stack_dir, env=env,
                                                  on_output=on_output))
