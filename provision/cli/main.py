"""``gpuctl`` entry point: registers the command groups and turns errors into one line."""

from __future__ import annotations

import sys
from typing import Any

import click

from provision import __version__
from provision.errors import GpuctlError

HELP = """gpuctl: plan, build and prove an owned bare-metal GPU cluster.

\b
The workflow, from one site description (inventory/sites/<site>/site.yaml):
  gpuctl lint SITE                  check the site model (schema + semantic rules)
  gpuctl plan SITE -o DIR           fabric, cabling, addresses, power, BOM, configs
  gpuctl lab up SITE                a simulated site on this machine (root)
  gpuctl provision site SITE        bring hosts up in phases (Redfish + Ansible)
  gpuctl fabric verify SITE ...     compare the discovered InfiniBand fabric with the plan
  gpuctl burnin run SITE --rack R   acceptance tests for a new rack

SITE is a site directory or its site.yaml. Add --debug before the command for tracebacks.
"""


class GpuctlGroup(click.Group):
    """A click group that reports GpuctlError as one line and a non-zero exit."""

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


def _register() -> None:
    import importlib

    for module, name in [
        ("provision.cli.lint", "lint"),
        ("provision.cli.schema", "schema"),
        ("provision.cli.plan", "plan"),
        ("provision.cli.fabric", "fabric"),
        ("provision.cli.burnin", "burnin"),
        ("provision.cli.lab", "lab"),
        ("provision.cli.provision", "provision"),
    ]:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue  # command not built yet
            raise
        cli.add_command(getattr(mod, name))


_register()


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
