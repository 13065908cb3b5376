"""``gpuctl lab up|down|status SITE``: a simulated site on this machine (root, Linux)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provision.errors import LabError

if TYPE_CHECKING:
    from provision.lab import LabStatus

LAB_DIR_HELP = "Where the lab keeps its state, keys and logs [default: <repo>/.lab/<site>]."


def site_name(site: str) -> str:
    """The site's name from its path: the directory, or the directory holding site.yaml."""
    path = Path(site)
    if path.suffix in (".yaml", ".yml"):
        path = path.parent
    name = path.resolve().name
    if not name:
        raise LabError(f"site {site!r}: cannot tell the site name from this path")
    return name


def lab_dir_of(site: str) -> Path:
    """The lab dir ``gpuctl lab up SITE`` uses by default (provision and burnin look there)."""
    from provision.lab import default_lab_dir

    return default_lab_dir(site_name(site))


def _lab_dir(site: str, lab_dir: str | None) -> Path:
    return Path(lab_dir).absolute() if lab_dir else lab_dir_of(site)


@click.group("lab")
def lab() -> None:
    """A simulated site on this machine: hosts as network namespaces with their own sshd,
    BMCs from a Redfish emulator, an ibsim InfiniBand fabric with OpenSM. Needs root."""


@lab.command("up")
@click.argument("site")
@click.option("--lab-dir", type=click.Path(file_okay=False), default=None, help=LAB_DIR_HELP)
def up_cmd(site: str, lab_dir: str | None) -> None:
    """Bring the site's lab up (idempotent; rolls back on failure)."""
    from provision import lab as labmod

    labmod.require_root()
    try:
        from provision.lab.from_plan import host_setup_for_site, lab_spec_for_site
    except ImportError as exc:
        raise LabError(f"site {site}: cannot build a lab spec ({exc})") from exc
    spec = lab_spec_for_site(site)
    state = labmod.up(spec, _lab_dir(site, lab_dir), host_setup=host_setup_for_site(site))
    paths = state.paths
    vms = f", {len(state.vms)} VMs" if state.vms else ""
    click.echo(f"lab {state.site}: {len(state.hosts)} hosts{vms} up on bridge {state.bridge} "
               f"({state.gateway})")
    click.echo(f"  ssh:    ssh -F {paths.ssh_config} {next(iter(state.hosts))}")
    if state.bmc is not None:
        click.echo(f"  BMC:    {state.bmc.url}/redfish/v1 (credentials: "
                   f"{'GPUCTL_BMC_USER/PASSWORD' if state.bmc.credentials == 'env' else paths.secrets})")
    if state.vm_bmc is not None:
        click.echo(f"  VMs:    {', '.join(sorted(state.vms))} (libvirt, shut off; their BMCs "
                   f"{state.vm_bmc.url}/redfish/v1, system id = domain UUID)")
    if state.fabric is not None:
        sms = ", ".join(repr(sm.sm_node) for sm in state.fabric.sms)
        click.echo(f"  fabric: ibsim at {state.fabric.server}:{state.fabric.port}, "
                   f"OpenSM on {sms} (logs in {paths.fabric_dir})")


@lab.command("down")
@click.argument("site")
@click.option("--lab-dir", type=click.Path(file_okay=False), default=None, help=LAB_DIR_HELP)
def down_cmd(site: str, lab_dir: str | None) -> None:
    """Stop and remove everything the site's lab made (works from its state alone)."""
    from provision import lab as labmod

    root = _lab_dir(site, lab_dir)
    removed = labmod.down(site_name(site), root)
    click.echo(f"lab {site_name(site)}: " + ("down" if removed else f"nothing recorded in {root}"))


@lab.command("status")
@click.argument("site")
@click.option("--lab-dir", type=click.Path(file_okay=False), default=None, help=LAB_DIR_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def status_cmd(site: str, lab_dir: str | None, fmt: str) -> None:
    """Check every host, the BMC emulator and the fabric; exit 1 unless all is well."""
    from provision import lab as labmod

    result = labmod.status(site_name(site), _lab_dir(site, lab_dir))
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        _render(result)
    sys.exit(0 if result.ok else 1)


def _mark(flag: bool) -> str:
    return "[green]ok[/]" if flag else "[red]no[/]"


def _render(result: LabStatus) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not result.recorded:
        console.print(f"lab {result.site}: not up (nothing recorded in {result.lab_dir})")
        return
    table = Table(title=f"lab {result.site} ({'ok' if result.ok else 'NOT OK'})")
    for col in ("host", "address", "netns", "sshd", "ssh", "detail"):
        table.add_column(col)
    for h in result.hosts:
        table.add_row(h.name, h.address, _mark(h.netns),
                      f"{_mark(h.sshd_alive)} {h.sshd_pid or ''}", _mark(h.ssh), h.detail)
    console.print(table)
    console.print(f"bridge {result.bridge}: {_mark(result.bridge_present)}"
                  + ("" if result.complete else "  [red](up did not finish)[/]"))
    if result.bmc is not None:
        powers = ", ".join(f"{k}={v}" for k, v in sorted(result.bmc.systems.items()))
        console.print(f"BMC {result.bmc.url}: process {_mark(result.bmc.alive)}, "
                      f"answering {_mark(result.bmc.answering)} {result.bmc.detail} {powers}")
    for v in result.vms:
        console.print(f"VM {v.name} ({v.domain}, {v.mac}, planned {v.address}): {v.state}")
    for r in result.racks:
        console.print(f"rack {r.name}: bridge {_mark(r.bridge_present)}, router "
                      f"{_mark(r.router_netns)}, DHCP relay {_mark(r.relay_alive)}")
    if result.vm_bmc is not None:
        b = result.vm_bmc
        powers = ", ".join(f"{k}={v}" for k, v in sorted(b.systems.items()))
        console.print(f"VM BMC {b.url}: process {_mark(b.alive)}, "
                      f"answering {_mark(b.answering)} {b.detail} {powers}")
    if result.fabric is not None:
        f = result.fabric
        console.print(f"fabric {f.server}:{f.port}: ibsim {_mark(f.ibsim_alive)}")
        for sub in f.subnets:
            console.print(f"  subnet of {sub.sm_node!r}: opensm {_mark(sub.opensm_alive)}, "
                          f"SM {sub.sm_state or '?'}, subnet up {_mark(sub.subnet_up)} "
                          f"{sub.detail}")
            if sub.sminfo:
                console.print(f"    {sub.sminfo}", markup=False)


def _register_fault() -> None:
    from provision.cli.lab_fault import fault

    lab.add_command(fault)


_register_fault()
