"""``gpuctl`` entry point: registers the command groups and turns errors into one line."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from provision import __version__
from provision.errors import GpuctlError

HELP = """gpuctl: plan, build and prove an owned bare-metal GPU cluster.

\b
The workflow, from one site description (inventory/sites/<site>/site.yaml):
  gpuctl lint SITE                  check the site model (schema + semantic rules)
  gpuctl schema [site|catalog]      every key of a site file or a catalog file
  gpuctl catalog [KIND]             hardware SKUs (nodes, switches, cables, ...) and their facts
  gpuctl plan SITE -o DIR           fabric, cabling, addresses, power, BOM, configs
  gpuctl lab up SITE                a simulated site on this machine (root)
  gpuctl image build SITE           OS images for the node groups (mmdebstrap), with digests
  gpuctl provision site SITE        bring hosts up in phases (Redfish + Ansible)
  gpuctl fabric verify SITE ...     compare the discovered InfiniBand fabric with the plan
  gpuctl burnin run SITE --rack R   acceptance tests for a new rack
  gpuctl platform up SITE           GPU/Network Operators, Kueue, MPI Operator (Pulumi)

SITE is a site directory or its site.yaml. Add --debug before the command for tracebacks.

\b
Exit status of provision and burnin: 0 ok, 1 some hosts failed (and only then),
2 bad usage or unreadable input (site, store, files; one line says which and the way out),
130 interrupted (SIGINT/SIGTERM; the run is recorded, rerun with --resume).
Other commands: 0 ok, 1 findings, a failed check or a failed step (lint errors,
plan --check drift, fabric verify findings, an image build), 2 bad usage or
unreadable input; each command's --help says more.
"""


COMMANDS: dict[str, tuple[str, str]] = {
    "lint": ("provision.cli.lint", "lint"),
    "schema": ("provision.cli.schema", "schema"),
    "catalog": ("provision.cli.catalog", "catalog"),
    "plan": ("provision.cli.plan", "plan"),
    "fabric": ("provision.cli.fabric", "fabric"),
    "lab": ("provision.cli.lab", "lab"),
    "image": ("provision.cli.image", "image"),
    "provision": ("provision.cli.provision", "provision"),
    "burnin": ("provision.cli.burnin", "burnin"),
    "platform": ("provision.cli.platform", "platform"),
}
"""Command name -> (module, attribute); modules load only when their command runs."""

RUN_COMMANDS = ("provision", "burnin")
"""Groups whose exit status is 0 ok / 1 host failures / 2 usage or input / 130 interrupted:
exit 1 is theirs to give (failed hosts); every error they raise exits 2, or 130."""

INTERRUPTED = 130


def exit_code(command: str | None, exc: GpuctlError) -> int:
    """The exit status of ``gpuctl COMMAND`` failing with ``exc``."""
    if exc.exit_code == INTERRUPTED or command not in RUN_COMMANDS:
        return exc.exit_code
    return 2


class GpuctlGroup(click.Group):
    """Lazily loads subcommands; reports GpuctlError as one line and a non-zero exit."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GpuctlError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"gpuctl: error: {exc}", err=True)
            sys.exit(exit_code(ctx.invoked_subcommand, exc))

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Click's main, with usage errors as one line (exit 2) instead of three."""
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "gpuctl"
            click.echo(f"gpuctl: error: {where}: {exc.format_message().rstrip('.')} "
                       f"(see {where} --help)", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"gpuctl: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("gpuctl: interrupted", err=True)
            sys.exit(INTERRUPTED)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=GpuctlGroup, help=HELP)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="gpuctl")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
