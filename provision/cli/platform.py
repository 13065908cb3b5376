"""``gpuctl platform``: the Kubernetes platform of a site as one Pulumi stack per site."""

from __future__ import annotations

import json
from pathlib import Path

import click

from provision.cli.common import SITE_ARG
from provision.errors import UsageError
from provision.plan.load import load_and_plan
from provision.platform.config import stack_config, stack_file
from provision.platform.manifests import all_manifests, render_yaml
from provision.platform.model import PlatformConfig

HOST_DRIVER = click.option(
    "--driver-on-host/--driver-in-operator", "host_driver", default=True, show_default=True,
    help="Whether gpuctl's roles install the NVIDIA driver, container toolkit and DOCA-OFED on "
         "the hosts (then the operators' driver containers are off).")


def _config(site: Path, host_driver: bool) -> PlatformConfig:
    _, plan = load_and_plan(site)
    return stack_config(plan, host_installs_driver=host_driver)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{out}: cannot write: {exc.strerror}") from exc
    click.echo(f"wrote {out}", err=True)


@click.group("platform")
def platform() -> None:
    """The Kubernetes platform of a site (GPU/Network Operators, Kueue, MPI Operator).

    \b
    One Pulumi stack per site, its config computed from the site's plan:
      gpuctl platform config inventory/sites/lab -o stacks/platform/Pulumi.lab.yaml
      gpuctl platform preview inventory/sites/lab     (no Pulumi CLI needed)
      gpuctl platform up inventory/sites/lab          (needs the Pulumi CLI)
    """


@platform.command("config")
@SITE_ARG
@click.option("-o", "--output", "out", type=click.Path(path_type=Path),
              help="Write the Pulumi stack config file here (default: stdout).")
@HOST_DRIVER
def config_cmd(site: Path, out: Path | None, host_driver: bool) -> None:
    """Print (or write) the Pulumi stack config file of SITE's platform stack."""
    _write(stack_file(_config(site, host_driver)), out)


@platform.command("manifests")
@SITE_ARG
@click.option("-o", "--output", "out", type=click.Path(path_type=Path),
              help="Write the YAML here (default: stdout).")
@HOST_DRIVER
def manifests_cmd(site: Path, out: Path | None, host_driver: bool) -> None:
    """Print the non-Helm objects (namespaces, Kueue Topology/ResourceFlavor, PrometheusRule,
    node labels and taints) as YAML for review."""
    _write(render_yaml(all_manifests(_config(site, host_driver))), out)


@platform.command("preview")
@SITE_ARG
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@HOST_DRIVER
def preview_cmd(site: Path, fmt: str, host_driver: bool) -> None:
    """List the resources SITE's stack manages (runs the program under mocks; no CLI)."""
    from provision.execute.pulumi_stack import dry_run_resources

    rows = dry_run_resources(_config(site, host_driver))
    if fmt == "json":
        click.echo(json.dumps([{"type": t, "name": n} for t, n in rows], indent=2))
        return
    for t, n in rows:
        click.echo(f"{t}  {n}")
    click.echo(f"{len(rows)} resources", err=True)


@platform.command("up")
@SITE_ARG
@HOST_DRIVER
@click.option("--preview-only", is_flag=True, help="Run `pulumi preview` instead of `up`.")
def up_cmd(site: Path, host_driver: bool, preview_only: bool) -> None:
    """Create or update SITE's platform stack with the Pulumi Automation API (needs the CLI)."""
    from provision.execute.pulumi_stack import require_cli, run

    require_cli()
    cfg = _config(site, host_driver)
    changes = run("preview" if preview_only else "up", cfg,
                  on_output=lambda line: click.echo(line, nl=False))
    click.echo(json.dumps(changes, sort_keys=True))


@platform.command("nccl-job")
@SITE_ARG
@click.argument("nodes", nargs=-1, required=True)
@click.option("--test", default="all_reduce_perf", show_default=True,
              help="nccl-tests binary.")
@click.option("--namespace", default="default", show_default=True)
@click.option("--queue", default=None, help="Kueue LocalQueue to submit through.")
def nccl_job_cmd(site: Path, nodes: tuple[str, ...], test: str, namespace: str,
                 queue: str | None) -> None:
    """Print an MPIJob running an nccl-tests binary on NODES, placed by topology labels."""
    from provision.platform.mpijob import render_mpijob

    _, plan = load_and_plan(site)
    click.echo(render_mpijob(plan, list(nodes), test, namespace=namespace, queue=queue),
               nl=False)
