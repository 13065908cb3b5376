"""``gpuctl lab fault SITE NODE KIND``: inject simulated hardware faults into a lab host.

The faults live in the lab's hardware simulator directory (``<lab dir>/hwsim``, lab dir
``<repo>/.lab/<site>`` unless ``--lab-dir``); the simulated tools on the lab hosts read them
on their next run. Only lab hosts are affected: nothing here touches real hardware.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from provision.errors import LabError, UsageError
from provision.lab.hwsim import FAULT_KINDS, clear_faults, known_hosts, list_faults, set_fault
from provision.lab.hwsim.faults import make_fault

SIM_DIR_NAME = "hwsim"
KINDS_HELP = "; ".join(f"{kind}: {what}" for kind, (what, _) in FAULT_KINDS.items())


def site_name(site: str) -> str:
    """The site's name from its path: the directory, or the directory holding site.yaml."""
    path = Path(site)
    if path.suffix in (".yaml", ".yml"):
        path = path.parent
    name = path.resolve().name
    if not name:
        raise UsageError(f"site {site!r}: cannot tell the site name from this path")
    return name


def _default_lab_dir(site: str) -> Path:
    try:
        from provision.lab import default_lab_dir
    except ImportError:  # the lab package without its lifecycle: same rule as there
        checkout = Path(__file__).resolve().parents[2]
        base = checkout if (checkout / "pyproject.toml").exists() else Path.cwd()
        return base / ".lab" / site
    return default_lab_dir(site)


def sim_dir_for(site: str, lab_dir: str | None) -> Path:
    """``<lab dir>/hwsim`` for ``site``; LabError when the lab has no simulated hardware."""
    root = Path(lab_dir).absolute() if lab_dir is not None else _default_lab_dir(site_name(site))
    sim_dir = root / SIM_DIR_NAME
    if not known_hosts(sim_dir):
        raise LabError(
            f"{sim_dir}: no simulated hardware here; is the lab up? (gpuctl lab up {site})"
        )
    return sim_dir


def _check_node(sim_dir: Path, node: str) -> None:
    hosts = known_hosts(sim_dir)
    if node not in hosts:
        shown = ", ".join(hosts[:8]) + (", ..." if len(hosts) > 8 else "")
        raise UsageError(f"unknown lab node {node!r}; lab hosts: {shown}")


@click.command("fault", epilog=f"Fault kinds: {KINDS_HELP}.")
@click.argument("site")
@click.argument("node", required=False)
@click.argument("kind", required=False)
@click.option(
    "--gpu",
    type=click.IntRange(min=0),
    default=None,
    help="GPU slot (0-based) for gpu-missing, xid, ecc, dcgm-fail, nvlink-down.",
)
@click.option(
    "--hca",
    type=click.IntRange(min=0),
    default=None,
    help="HCA index N (mlx5_N) for hca-down, hca-200g.",
)
@click.option(
    "--xid",
    "xid_code",
    type=click.IntRange(min=1),
    default=None,
    help="Xid code for xid [default: 79].",
)
@click.option(
    "--state",
    type=click.Choice(["Down", "Polling"]),
    default=None,
    help="Port state for hca-down [default: Down].",
)
@click.option(
    "--percent",
    type=click.IntRange(1, 100),
    default=None,
    help="busbw percentage for slow-nccl [default: 42-58, fixed per node].",
)
@click.option(
    "--test",
    "test_name",
    default=None,
    help="dcgmi test that fails for dcgm-fail [default: memory, software at -r 1].",
)
@click.option("--clear", is_flag=True, help="Remove the faults of NODE (all nodes without NODE).")
@click.option("--list", "list_", is_flag=True, help="Show the injected faults.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format of --list.",
)
@click.option(
    "--lab-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="The lab's directory [default: <repo>/.lab/<site>].",
)
def fault(
    site: str,
    node: str | None,
    kind: str | None,
    gpu: int | None,
    hca: int | None,
    xid_code: int | None,
    state: str | None,
    percent: int | None,
    test_name: str | None,
    clear: bool,
    list_: bool,
    fmt: str,
    lab_dir: str | None,
) -> None:
    """Inject a simulated hardware fault KIND into lab host NODE of SITE (lab only).

    \b
    gpuctl lab fault SITE NODE KIND [--gpu N] [--hca N] [--xid CODE]
    gpuctl lab fault SITE [NODE] --clear
    gpuctl lab fault SITE [NODE] --list [--format json]
    """
    if clear and list_:
        raise UsageError("--clear and --list cannot be combined")
    if (clear or list_) and kind is not None:
        raise UsageError(f"unexpected fault kind {kind!r} with --{'clear' if clear else 'list'}")
    params: dict[str, int | str | None] = {
        "gpu": gpu,
        "hca": hca,
        "xid": xid_code,
        "state": state,
        "percent": percent,
        "test": test_name,
    }
    if not (clear or list_):
        if node is None or kind is None:
            raise UsageError(
                f"give NODE and KIND (or --clear / --list); fault kinds: {', '.join(FAULT_KINDS)}"
            )
        try:
            make_fault(kind, **params)
        except LabError as exc:
            raise UsageError(str(exc)) from exc
    sim_dir = sim_dir_for(site, lab_dir)
    if node is not None:
        _check_node(sim_dir, node)
    if list_:
        faults = {h: fs for h, fs in list_faults(sim_dir).items() if node in (None, h)}
        if fmt == "json":
            data = {
                h: [{"kind": f.kind, "params": f.params} for f in fs] for h, fs in faults.items()
            }
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        elif not faults:
            click.echo("no simulated faults injected")
        else:
            for host, fs in faults.items():
                for f in fs:
                    click.echo(f"{host}: {f.describe()}")
        return
    if clear:
        cleared = clear_faults(sim_dir, node)
        click.echo(
            f"cleared simulated faults on {', '.join(cleared)}"
            if cleared
            else "no simulated faults to clear"
        )
        return
    assert node is not None and kind is not None
    injected = set_fault(sim_dir, node, kind, **params)
    click.echo(f"{node}: injected simulated fault {injected.describe()}")
