"""plan.json dumped a few rows at a time and written as encoded pieces is the text one
``json.dumps`` per table gives, one row per line, whatever the rows hold."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from provision.render import plan_files
from provision.render.files import write_tree
from tests.render_support import site_plan


@dataclasses.dataclass
class _Row:
    name: str
    size: float
    note: str | None
    count: int | None = 1
    rail: float | None = None
    flag: object = 0


def _one_dump(rows: list[_Row]) -> str:
    """A table as plan.json wrote it before it was dumped in pieces."""
    names = [f.name for f in dataclasses.fields(_Row)]
    body = ",\n".join(json.dumps([getattr(r, n) for n in names], separators=(",", ":"))
                      for r in rows)
    return f'{{"columns": {json.dumps(names)}, "rows": [\n{body}\n]}}'


@pytest.mark.parametrize("per_piece", [1, 2, 3, 8192])
def test_a_table_in_pieces_is_the_one_dump(monkeypatch: pytest.MonkeyPatch,
                                           per_piece: int) -> None:
    monkeypatch.setattr(plan_files, "ROWS_PER_PIECE", per_piece)
    plain = [_Row(f"r{i}", i / 3, "x", i * 10**20, None if i % 3 else i + 0.5)
             for i in range(7)]
    odd = [_Row("odd],[name", 1.0, "é\n\"],["), _Row("a\\b", 2, "%s%r"),
           _Row("tab\t", 1e300 * 10, "del\x7f"), _Row("nan", float("nan"), "ü"),
           _Row("b", 3, None, True, 1.5, [1, "x"]), _Row("", -0.0, "", None, None, None)]
    for row in odd:  # each alone among plain rows, and all together
        rows = [*plain[:3], row, *plain[3:]]
        for table in (rows, rows[:1], rows[2:]):
            assert b"".join(plan_files._record_parts(table)).decode() == _one_dump(table)
    rows = [*plain, *odd]
    assert b"".join(plan_files._record_parts(rows)).decode() == _one_dump(rows)
    assert b"".join(plan_files._record_parts([])) == b'{"columns": [], "rows": []}'


def test_plan_json_pieces_write_and_hash_as_the_text(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    plan = site_plan("lab")
    text = plan_files.plan_json(plan)
    monkeypatch.setattr(plan_files, "ROWS_PER_PIECE", 5)
    assert plan_files.plan_json(plan) == text
    write_tree(tmp_path, {"plan.json": plan_files.plan_json_parts(plan)})
    assert (tmp_path / "plan.json").read_text() == text
    write_tree(tmp_path, {"plan.json": plan_files.plan_json_parts(plan)})  # compared, kept
    assert (tmp_path / "plan.json").read_text() == text
    assert plan_files.plan_version(plan) == hashlib.sha256(text.encode()).hexdigest()[:16]
