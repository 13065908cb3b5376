"""``gpuctl fabric verify``: compare the discovered InfiniBand fabric with the plan."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from provision.cli.common import SITE_ARG
from provision.errors import ParseError, UsageError
from provision.fabric.expected import expected_fabric, parse_scope
from provision.fabric.findings import KINDS, VerifyResult
from provision.fabric.observed import Topology
from provision.fabric.report import to_json, to_text
from provision.fabric.topology import parse_topology
from provision.fabric.verify import verify
from provision.loader import GUIDS_FILE
from provision.plan.load import load_and_plan

FABRIC_HELP = """InfiniBand fabrics: check the cabling against the plan.

\b
  verify   compare ibnetdiscover output (a file, or run live) with the planned fabric
"""

_KINDS_HELP = "\b\nFINDINGS:\n" + "\n".join(f"  {k:22} {v}" for k, v in KINDS.items())


@click.group("fabric", help=FABRIC_HELP)
def fabric() -> None:
    """The ``fabric`` command group."""


def _read(file: str) -> str:
    try:
        with click.open_file(file, "r", encoding="utf-8", errors="replace") as handle:
            return str(handle.read())
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc


def _parse(text: str, origin: str) -> Topology:
    try:
        return parse_topology(text)
    except ParseError as exc:
        raise UsageError(f"{origin}: {exc}") from exc


def _observe(observed: Sequence[str], live: bool, cas: Sequence[str], timeout: float,
             save: Path | None) -> Topology:
    if bool(observed) == live:
        raise UsageError("fabric verify: give --observed FILE or --live (one of them)")
    texts: list[tuple[str, str]] = []
    if live:
        from provision.execute.ibdiscover import run_ibnetdiscover

        choices: list[str | None] = list(cas) or [None]
        for ca in choices:
            texts.append((f"ibnetdiscover{f' -C {ca}' if ca else ''}",
                          run_ibnetdiscover(ca=ca, timeout=timeout)))
        if save is not None:
            try:
                save.write_text("".join(t for _, t in texts))
            except OSError as exc:
                raise UsageError(f"cannot write {save}: {exc.strerror or exc}") from exc
    else:
        texts = [(f, _read(f)) for f in observed]
    topo: Topology | None = None
    for origin, text in texts:
        part = _parse(text, origin)
        topo = part if topo is None else topo.merge(part)
    assert topo is not None
    return topo


def write_guid_file(path: Path, learned: dict[str, str]) -> int:
    """Merge ``learned`` into the GUID file at ``path`` (sorted JSON); returns entries written."""
    current: dict[str, str] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read the existing GUID map: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError(f"{path}: expected a JSON object of name -> GUID")
        current = {str(k): str(v) for k, v in data.items()}
    current.update(learned)
    try:
        path.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(learned)


def record(result: VerifyResult, site_dir: Path) -> str:
    """Store the result in the site's results DB when it has one; says what happened."""
    from provision.burnin.store import record_fabric_verify

    where = record_fabric_verify(result.site, result.to_json(), site_dir)
    return where if where.startswith("no results DB") else f"result recorded in {where}"


@fabric.command("verify", help="Compare the discovered fabric of SITE with its plan; exit 0 "
                "when everything in scope is cabled and up as planned, 1 otherwise.\n\n"
                + _KINDS_HELP)
@SITE_ARG
@click.option("--observed", multiple=True, metavar="FILE",
              help="ibnetdiscover (or iblinkinfo) output; '-' for stdin; repeat for one "
                   "capture per plane.")
@click.option("--live", is_flag=True, help="Run ibnetdiscover here (honours LD_PRELOAD, "
              "SIM_HOST, IBSIM_SERVER_NAME/PORT for the simulated fabric).")
@click.option("--ca", "cas", multiple=True, metavar="CA",
              help="With --live: HCA to discover from (ibnetdiscover -C); repeat per plane.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="With --live: seconds ibnetdiscover may take.")
@click.option("--save-capture", type=click.Path(dir_okay=False, path_type=Path),
              help="With --live: keep the raw ibnetdiscover output in this file.")
@click.option("--scope", "scopes", multiple=True, metavar="KEY=V[,V...]",
              help="What must be present: rack=a01,a02 | su=1 | host=dgx-001 (repeat to "
                   "add); planned cables outside it may be absent (not yet present).")
@click.option("--fabric", "fabric_name", default="compute", show_default=True, metavar="NAME",
              help="Which InfiniBand fabric: compute, or a name under fabrics.infiniband "
                   "(each fabric is its own subnet: discover it from one of its HCAs).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--write-guids", is_flag=True, help=f"Write the GUIDs learned to {GUIDS_FILE} "
              "next to SITE's site.yaml (merged, sorted; the plan uses them).")
def verify_cmd(site: Path, observed: tuple[str, ...], live: bool, cas: tuple[str, ...],
               timeout: float, save_capture: Path | None, scopes: tuple[str, ...],
               fabric_name: str, fmt: str, write_guids: bool) -> None:
    loaded, plan = load_and_plan(site)
    exp = expected_fabric(plan, fabric_name)
    scope = parse_scope(scopes, exp)
    topo = _observe(observed, live, cas, timeout, save_capture)
    result = verify(topo, exp, scope)
    notes: list[str] = []
    if write_guids:
        path = loaded.path.parent / GUIDS_FILE
        n = write_guid_file(path, result.guids)
        notes.append(f"wrote {n} GUIDs to {path}")
    notes.append(record(result, loaded.path.parent))
    if fmt == "json":
        click.echo(to_json(result), nl=False)
    else:
        click.echo(to_text(result), nl=False)
        for note in notes:
            click.echo(note, err=True)
    if not result.ok:
        sys.exit(1)

