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

SITE is a site directory or its site.yaml. Add --debug before the command for tracebacks.
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
            sys.exit(exc.exit_code)


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
