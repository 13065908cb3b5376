"""Small pure helpers shared by the probe parsers: value conversion and error wording.

Every parser reports a problem as ``ParseError("<kind>: <reason>")`` with the offending text
quoted by ``!r`` so the one-line CLI message shows what was wrong.
"""

from __future__ import annotations

import re

from provision.errors import ParseError

#: Values that nvidia-smi and friends print when a field has no value.
_MISSING = {
    "",
    "n/a",
    "[n/a]",
    "not supported",
    "[not supported]",
    "<<<not_supported>>>",
    "requested functionality has been deprecated",
    "[requested functionality has been deprecated]",
    "none",
    "unknown",
    "unknown error",
}

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z%/]+)?\s*$")


def snippet(text: str, limit: int = 60) -> str:
    """The first non-blank line of ``text``, shortened, for error messages."""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def check_text(kind: str, text: str) -> None:
    """Reject input that cannot be any tool's output: empty, blank or binary."""
    if not text.strip():
        raise ParseError(f"{kind}: empty output")
    if "\x00" in text:
        raise ParseError(f"{kind}: binary data (NUL bytes), not text output")


def missing(value: str | None) -> bool:
    """True when ``value`` is one of the tools' spellings of "no value".

    nvidia-smi's CSV form brackets every such note (``[N/A]``, ``[Unknown Error]``).
    """
    if value is None:
        return True
    cleaned = value.strip()
    return cleaned.lower() in _MISSING or (cleaned.startswith("[") and cleaned.endswith("]"))


def text_or_none(value: str | None) -> str | None:
    """The stripped value, or None when it is a "no value" spelling."""
    if value is None or missing(value):
        return None
    return value.strip()


def _number(kind: str, field: str, value: str) -> str:
    match = _NUMBER.match(value)
    if match is None:
        raise ParseError(f"{kind}: field {field!r} is not a number: {value.strip()!r}")
    return match.group(1)


def int_or_none(kind: str, field: str, value: str | None) -> int | None:
    """Parse ``"81559 MiB"``, ``"16x"``, ``"5"`` to int; "no value" spellings to None."""
    if value is None or missing(value):
        return None
    cleaned = value.strip()
    if cleaned.endswith("x") and cleaned[:-1].isdigit():  # link width "16x"
        return int(cleaned[:-1])
    if cleaned.lower().startswith("x") and cleaned[1:].isdigit():  # link width "x16"
        return int(cleaned[1:])
    number = _number(kind, field, cleaned)
    if "." in number:
        raise ParseError(f"{kind}: field {field!r} is not an integer: {cleaned!r}")
    return int(number)


def float_or_none(kind: str, field: str, value: str | None) -> float | None:
    """Parse ``"67.03 W"``, ``"1275 MHz"`` to float; "no value" spellings to None."""
    if value is None or missing(value):
        return None
    return float(_number(kind, field, value.strip()))


def yes_no(kind: str, field: str, value: str | None) -> bool | None:
    """Parse Yes/No (and True/False) to bool; "no value" spellings to None."""
    if value is None or missing(value):
        return None
    lowered = value.strip().lower()
    if lowered in {"yes", "true"}:
        return True
    if lowered in {"no", "false"}:
        return False
    raise ParseError(f"{kind}: field {field!r} must be Yes or No, got {value.strip()!r}")


def add_optional(*values: int | None) -> int | None:
    """Sum of the values that are known; None when none is known."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None
