"""Every parser fails only with a one-line ParseError, never with a stray exception, and
never touches files, processes or the network while parsing."""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.burnin.probes import KINDS, to_json
from provision.errors import ParseError

GOLDEN = Path(__file__).parent / "golden"
SAMPLES = {
    kind: sorted(p.read_text(encoding="utf-8") for p in (GOLDEN / kind).glob("*.txt"))
    for kind in KINDS
}


def _parse_or_parse_error(kind: str, text: str) -> None:
    try:
        result = KINDS[kind](text)
    except ParseError as exc:
        message = str(exc)
        assert message.startswith(f"{kind}: ") and "\n" not in message, message
    else:
        to_json(result)  # whatever parses must also render


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_truncated_and_mangled_samples_raise_only_parse_error(kind: str, data: Any) -> None:
    sample = data.draw(st.sampled_from(SAMPLES[kind]))
    cut = data.draw(st.integers(min_value=0, max_value=len(sample)))
    junk = data.draw(st.text(max_size=40))
    where = data.draw(st.integers(min_value=0, max_value=cut))
    _parse_or_parse_error(kind, sample[:where] + junk + sample[where:cut])


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_raises_only_parse_error(kind: str, text: str) -> None:
    _parse_or_parse_error(kind, text)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_parsers_do_no_io(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a parser tried to do I/O")

    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr(os, "open", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(socket, "socket", forbidden)
    for text in SAMPLES[kind]:
        with contextlib.suppress(ParseError):
            KINDS[kind](text)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("text", ["", " \n\t\n", "abc\x00def\n"], ids=["empty", "blank", "nul"])
def test_empty_blank_and_binary_input_is_rejected(kind: str, text: str) -> None:
    with pytest.raises(ParseError, match=rf"^{kind}: (empty output|binary data)"):
        KINDS[kind](text)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "status",
                    "name",
                    "results",
                    "tests",
                    "category",
                    "test_categories",
                    "entity_id",
                    "entity_group",
                    "gpu_ids",
                    "warnings",
                    "info",
                    "test_summary",
                    "warning",
                    "version",
                    "runtime_error",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(body=_JSON, wrapper=st.sampled_from(["DCGM Diagnostic", "DCGM GPU Diagnostic"]))
def test_dcgmi_any_json_shape_raises_only_parse_error(body: Any, wrapper: str) -> None:
    _parse_or_parse_error("dcgmi-diag", json.dumps({wrapper: body}))
