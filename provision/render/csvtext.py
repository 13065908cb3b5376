"""CSV text for generated files, fast for the 100k-row tables of GW-scale sites.

Rows are joined directly when no field needs quoting, which is checked on the whole text
at once (a comma, quote or line break inside a field changes the counts); otherwise the
csv module writes every row. Either way the text is what ``csv.writer`` would produce.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``header`` and ``rows`` as CSV with ``\\n`` line ends; ``None`` is empty, other values
    go through ``str`` (as with ``csv.writer``)."""
    table: list[Sequence[Any]] = [header, *rows]
    try:
        text = "\n".join(map(",".join, table))
    except TypeError:  # some values are numbers or None
        table = [tuple(map(str, r)) if None not in r
                 else tuple("" if v is None else str(v) for v in r) for r in table]
        text = "\n".join(map(",".join, table))
    width = len(header)
    if (width > 1 and '"' not in text and "\r" not in text
            and text.count("\n") == len(table) - 1
            and text.count(",") == (width - 1) * len(table)
            and set(map(len, table)) == {width}):
        return text + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(table)
    return buf.getvalue()
