"""Golden cases of ``gpuctl fabric verify``: one capture per case, the expected result beside it.

``tests/golden/ibnetdiscover/<case>.txt`` is real ``ibnetdiscover``/``iblinkinfo`` output
(from ibsim, see ``make_captures.py``) or a hand-written broken capture; ``<case>.json`` names
the fixture site and scope and holds the expected result (findings, counts, inferred names,
learned GUIDs), or the expected one-line parse error. ``GPUCTL_UPDATE_GOLDEN=1`` rewrites the
expectations from the code (review the diff).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from provision.errors import ParseError
from provision.fabric.expected import Expected, expected_fabric, parse_scope
from provision.fabric.topology import parse_topology
from provision.fabric.verify import verify
from provision.plan.load import load_and_plan
from tests.conftest import UPDATE_GOLDEN as REGEN

GOLDEN = Path(__file__).resolve().parent / "golden" / "ibnetdiscover"
CASES = sorted(p.stem for p in GOLDEN.glob("*.txt"))


@functools.cache
def expected_of(site: str) -> Expected:
    return expected_fabric(load_and_plan(GOLDEN / "sites" / site)[1])


def run_case(case: str, spec: dict[str, Any]) -> dict[str, Any]:
    text = (GOLDEN / f"{case}.txt").read_text()
    if "site" not in spec:
        with pytest.raises(ParseError) as err:
            parse_topology(text)
        return {"error": str(err.value)}
    exp = expected_of(spec["site"])
    result = verify(parse_topology(text), exp, parse_scope(spec.get("scope", []), exp))
    return {"site": spec["site"], "scope": spec.get("scope", []), "result": result.to_json(),
            "guids": result.guids}


def test_every_case_has_an_expectation() -> None:
    assert len(CASES) >= 10
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == CASES


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    path = GOLDEN / f"{case}.json"
    spec = json.loads(path.read_text())
    got = run_case(case, spec)
    if REGEN:
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        return
    assert got == spec
