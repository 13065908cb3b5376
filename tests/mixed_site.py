"""A mixed site for the node-role tests: the SuperPOD example (127 DGX H100) plus a row of
four racks holding 64 GPU-less storage servers (``storage-2u-nvme``, role ``storage``)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SITES

STORAGE_ROW = "      - {name: s, racks: 4, y_m: 9.0, rack: {size_u: 48, power_kw: 40, cooling: air, pdu: pdu-3ph-415v-63a-net}}\n"
STORAGE_GROUP = """\
  - name: stor
    type: storage-2u-nvme
    role: storage
    count: 64
    hostname: "stor-{index:03d}"
    placement:
      hall: h1
      rows: [s]
      nodes_per_rack: 16
      u_positions: [3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33]
"""


def write_mixed_site(directory: Path) -> Path:
    """Write the mixed site to ``directory/site.yaml``; returns the directory."""
    text = (SITES / "superpod-h100-4su" / "site.yaml").read_text()
    row_b = next(ln for ln in text.splitlines(keepends=True) if ln.startswith("      - {name: b,"))
    text = text.replace(row_b, row_b + STORAGE_ROW, 1).replace(
        "\nfabrics:\n", STORAGE_GROUP + "\nfabrics:\n", 1)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "site.yaml").write_text(text)
    return directory
