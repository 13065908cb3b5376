"""``gpuctl burnin``: acceptance tests for new racks (run, parse, history)."""

from __future__ import annotations

import click

from provision.burnin.probes import KINDS, to_json
from provision.errors import ParseError, UsageError

BURNIN_HELP = """Burn-in: prove new hardware works before it is accepted.

\b
A burn-in runs probes on every node of a rack (nvidia-smi, DCGM diagnostics, NVLink,
kernel log Xids, PCIe links, InfiniBand ports, perftest, nccl-tests), parses each tool's
raw output, judges it against thresholds and stores the verdicts as the acceptance record.

\b
  run      run the probes on a rack and judge them
  parse    parse one tool's raw output to JSON (to check a capture by hand)
  history  show stored results
"""

_KINDS_HELP = "\b\nKINDS (for parse):\n" + "\n".join(f"  {kind}" for kind in KINDS)


@click.group(help=BURNIN_HELP + "\n" + _KINDS_HELP)
def burnin() -> None:
    """The ``burnin`` command group."""


@burnin.command(
    "parse",
    help="Parse a tool's raw output FILE ('-' for stdin) as KIND and print it as JSON.\n\n"
    + _KINDS_HELP,
)
@click.argument("kind", type=click.Choice(list(KINDS)), metavar="KIND")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE")
def parse_cmd(kind: str, file: str) -> None:
    """Print ``KINDS[kind](text)`` as indented JSON; ParseError exits 1 via the main CLI.

    The error names the file: ``gpuctl: error: node7/ibstat.txt: ibstat: ...``.
    """
    try:
        with click.open_file(file, "r", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        result = KINDS[kind](text)
    except ParseError as exc:
        raise ParseError(f"{'<stdin>' if file == '-' else file}: {exc}") from exc
    click.echo(to_json(result))
