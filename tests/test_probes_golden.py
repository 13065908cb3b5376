"""Golden-file tests of every burn-in parser: ``tests/golden/<kind>/<case>.{txt,json}``.

The ``.txt`` is a raw tool output written for this project (not a copied capture); the
``.json`` is either the expected parse result (as :func:`to_json` renders it) or
``{"error": "<substring of the ParseError message>"}`` for output that must be rejected.

To regenerate the expected results of the passing cases after an intended change, run
``GPUCTL_UPDATE_GOLDEN=1 python -m pytest tests/test_probes_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.burnin.probes import KINDS, to_json
from provision.errors import ParseError
from tests.conftest import UPDATE_GOLDEN as UPDATE

GOLDEN = Path(__file__).parent / "golden"

CASES = sorted(
    (kind_dir.name, txt.stem)
    for kind_dir in GOLDEN.iterdir()
    if kind_dir.is_dir() and kind_dir.name in KINDS
    for txt in kind_dir.glob("*.txt")
)


def test_every_kind_has_passing_and_failing_cases() -> None:
    for kind in KINDS:
        expectations = [
            json.loads((GOLDEN / kind / f"{case}.json").read_text())
            for k, case in CASES
            if k == kind
        ]
        errors = [e for e in expectations if isinstance(e, dict) and set(e) == {"error"}]
        assert errors, f"{kind}: no golden case of rejected output"
        assert len(errors) < len(expectations), f"{kind}: no golden case of valid output"


def test_every_golden_file_has_a_pair() -> None:
    for kind_dir in GOLDEN.iterdir():
        if not kind_dir.is_dir() or kind_dir.name not in KINDS:
            continue
        stems = {p.stem for p in kind_dir.glob("*.txt")}
        expected = {p.stem for p in kind_dir.glob("*.json")}
        assert stems == expected, f"{kind_dir.name}: unpaired cases {sorted(stems ^ expected)}"


@pytest.mark.parametrize(("kind", "case"), CASES, ids=[f"{k}/{c}" for k, c in CASES])
def test_golden(kind: str, case: str) -> None:
    text = (GOLDEN / kind / f"{case}.txt").read_text(encoding="utf-8")
    expected_path = GOLDEN / kind / f"{case}.json"
    expected = json.loads(expected_path.read_text()) if expected_path.exists() else None
    if isinstance(expected, dict) and set(expected) == {"error"}:
        with pytest.raises(ParseError) as info:
            KINDS[kind](text)
        message = str(info.value)
        assert message.startswith(f"{kind}: "), message
        assert "\n" not in message, "ParseError messages are one line"
        assert expected["error"] in message
        return
    rendered = to_json(KINDS[kind](text))
    if UPDATE:
        expected_path.write_text(rendered + "\n")
        return
    assert expected is not None, f"missing {expected_path}"
    assert json.loads(rendered) == expected
    assert to_json(KINDS[kind](text)) == rendered, "parsing is deterministic"
