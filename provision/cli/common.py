"""Click pieces shared by the CLI commands: the SITE argument and the history ``--limit``."""

from __future__ import annotations

from pathlib import Path

import click

SITE_ARG = click.argument("site", metavar="SITE", type=click.Path(path_type=Path))

HISTORY_LIMIT = click.option(
    "--limit", "count", type=click.IntRange(1, 10000), default=20, show_default=True,
    help="Runs shown, latest first (1 to 10000).")
"""``--limit`` of every history command: the same name, range and message everywhere."""

