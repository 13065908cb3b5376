"""Probe ``dcgmi diag -r LEVEL -j``: DCGM diagnostics, one verdict per test and GPU.

Two JSON shapes exist and both parse to :class:`DcgmDiag`:

- DCGM 3.x: ``{"DCGM GPU Diagnostic": {"test_categories": [...], "version": ...}}``; each
  result names its GPUs in ``gpu_ids`` (``"0"``, ``"0,1,2"`` or a number); warnings are
  strings or ``{"warning": ..., "error_id": ...}`` objects; test lists may hold ``null``.
- DCGM 4.x: ``{"DCGM Diagnostic": {"test_categories": [...]}, "metadata": {"version": ...}}``;
  each result names one entity (``entity_group`` GPU, ``entity_id``) and each test has a
  ``test_summary`` with the overall status.

Statuses are normalised to Pass, Fail, Warn, Skip and NotRun. Text before the JSON
document (dcgmi prints warnings there) is ignored. The text table dcgmi prints without
``-j`` is refused with a ParseError that says to rerun with ``-j``: its layout differs between
DCGM versions and its cells wrap, so a table is never read as a verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from provision.burnin.probes._common import check_text, snippet
from provision.errors import ParseError

KIND = "dcgmi-diag"

_STATUS = {
    "pass": "Pass",
    "passed": "Pass",
    "fail": "Fail",
    "failed": "Fail",
    "warn": "Warn",
    "warning": "Warn",
    "skip": "Skip",
    "skipped": "Skip",
    "not run": "NotRun",
    "notrun": "NotRun",
    "not_run": "NotRun",
}
_WORST = ("Fail", "Warn", "NotRun", "Skip", "Pass")


@dataclass(frozen=True)
class DiagResult:
    """The verdict of one test on one entity (``gpu`` None: all GPUs / not per GPU)."""

    gpu: int | None
    gpus: tuple[int, ...]
    status: str
    warnings: tuple[str, ...]
    info: tuple[str, ...]


@dataclass(frozen=True)
class DiagTest:
    """One test (``memory``, ``pcie``, ``software``...) with its overall status."""

    name: str
    category: str
    status: str
    results: tuple[DiagResult, ...]
    warnings: tuple[str, ...]
    info: tuple[str, ...]


@dataclass(frozen=True)
class DcgmDiag:
    """The whole run."""

    schema: str
    dcgm_version: str | None
    driver_version: str | None
    runtime_error: str | None
    tests: tuple[DiagTest, ...]

    @property
    def passed(self) -> bool:
        """No test failed or warned, nothing errored, and at least one test ran."""
        return (
            self.runtime_error is None
            and bool(self.tests)
            and all(t.status in {"Pass", "Skip"} for t in self.tests)
        )


def command(level: int = 1) -> list[str]:
    """argv of the probe; ``level`` 1 (quick) to 4 (extended)."""
    if level not in (1, 2, 3, 4):
        raise ValueError(f"dcgmi diag level must be 1, 2, 3 or 4, not {level!r}")
    return ["dcgmi", "diag", "-r", str(level), "-j"]


def _status(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in _STATUS:
        raise ParseError(
            f"{KIND}: {where}: unknown status {value!r}; expected one of "
            "Pass, Fail, Warn, Skip, Not Run"
        )
    return _STATUS[value.strip().lower()]


def _texts(value: Any, key: str) -> tuple[str, ...]:
    """Messages from a string, a list of strings, or a list of ``{key: text}`` objects."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            text = item.get(key, item.get("message"))
            if text is not None:
                out.append(str(text))
        elif item is not None:
            out.append(str(item))
    return tuple(out)


def _list(value: Any, where: str) -> list[Any]:
    """``value`` as a list (None as empty); ParseError for anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{KIND}: {where} is {type(value).__name__}, expected a list")
    return value


def _gpu_ids(value: Any, where: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        try:
            return tuple(int(part) for part in value.split(",") if part.strip())
        except ValueError:
            pass
    raise ParseError(f"{KIND}: {where}: gpu_ids {value!r} is not a GPU id list")


def _result(raw: Any, where: str) -> DiagResult:
    if not isinstance(raw, dict):
        raise ParseError(f"{KIND}: {where}: a result is {type(raw).__name__}, expected an object")
    if "entity_id" in raw:
        entity = raw["entity_id"]
        if not isinstance(entity, int) or isinstance(entity, bool):
            raise ParseError(f"{KIND}: {where}: entity_id {entity!r} is not an integer")
        gpus: tuple[int, ...] = (entity,) if raw.get("entity_group", "GPU") == "GPU" else ()
    else:
        gpus = _gpu_ids(raw.get("gpu_ids"), where)
    return DiagResult(
        gpu=gpus[0] if len(gpus) == 1 else None,
        gpus=gpus,
        status=_status(raw.get("status"), where),
        warnings=_texts(raw.get("warnings"), "warning"),
        info=_texts(raw.get("info"), "info"),
    )


def _test(raw: dict[str, Any], category: str) -> DiagTest:
    name = raw.get("name")
    if not isinstance(name, str):
        raise ParseError(f"{KIND}: a test in category {category!r} has no name")
    where = f"test {name!r}"
    results = tuple(_result(r, where) for r in _list(raw.get("results"), f"{where} results"))
    summary = raw.get("test_summary")
    if isinstance(summary, dict) and "status" in summary:
        status = _status(summary["status"], where)
        warnings = _texts(summary.get("warnings"), "warning")
        info = _texts(summary.get("info"), "info")
    elif results:
        status = next(s for s in _WORST if any(r.status == s for r in results))
        warnings, info = (), ()
    else:
        raise ParseError(f"{KIND}: {where} has neither results nor a test_summary")
    return DiagTest(name, category, status, results, warnings, info)


_TABLE_ROW = ("| diagnostic ", "| dcgm version ", "| deployment", "|-----  ", "+-----  ")


def _text_table(text: str) -> bool:
    """True when ``text`` is dcgmi diag's table (``+----+`` borders, ``| Diagnostic | Result``)."""
    lines = [line.strip().lower() for line in text.splitlines()]
    borders = sum(1 for line in lines if line.startswith("+---") and line.endswith("+"))
    rows = sum(1 for line in lines if line.startswith(_TABLE_ROW))
    return borders >= 1 and rows >= 1


def _document(text: str) -> dict[str, Any]:
    """The JSON object that starts the first line beginning with ``{``."""
    if _text_table(text):
        raise ParseError(
            f"{KIND}: a text table, not JSON: rerun as 'dcgmi diag -r LEVEL -j' "
            "(only the -j output is parsed)"
        )
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("{"):
            break
        offset += len(line)
    else:
        raise ParseError(f"{KIND}: no JSON document, output starts with {snippet(text)!r}")
    try:
        data, _ = json.JSONDecoder().raw_decode(text[offset:].lstrip())
    except json.JSONDecodeError as exc:
        raise ParseError(f"{KIND}: malformed or truncated JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ParseError(f"{KIND}: the JSON document is not an object")
    return data


def parse(text: str) -> DcgmDiag:
    """Parse either JSON shape; ParseError when it is neither."""
    check_text(KIND, text)
    data = _document(text)
    if "DCGM Diagnostic" in data:
        schema, body = "dcgm4", data["DCGM Diagnostic"]
        meta = data.get("metadata") or {}
    elif "DCGM GPU Diagnostic" in data:
        schema, body = "dcgm3", data["DCGM GPU Diagnostic"]
        meta = body
    else:
        keys = ", ".join(sorted(map(str, data))) or "none"
        raise ParseError(
            f"{KIND}: no 'DCGM Diagnostic' or 'DCGM GPU Diagnostic' object (top-level keys: {keys})"
        )
    if not isinstance(body, dict) or not isinstance(meta, dict):
        raise ParseError(f"{KIND}: the diagnostic object is not a JSON object")
    runtime_error = body.get("runtime_error", data.get("runtime_error"))
    tests: list[DiagTest] = []
    for category in _list(body.get("test_categories"), "test_categories"):
        if not isinstance(category, dict):
            raise ParseError(f"{KIND}: a test category is not an object")
        name = str(category.get("category", "unknown"))
        for test in _list(category.get("tests"), f"category {name!r} tests"):
            if isinstance(test, dict):
                tests.append(_test(test, name))
            elif test is not None:
                raise ParseError(f"{KIND}: a test in category {name!r} is not an object")
    if not tests and runtime_error is None:
        raise ParseError(f"{KIND}: the diagnostic reports no test and no runtime_error")
    version, driver = meta.get("version"), meta.get("Driver Version Detected")
    return DcgmDiag(
        schema=schema,
        dcgm_version=None if version is None else str(version),
        driver_version=None if driver is None else str(driver),
        runtime_error=None if runtime_error is None else str(runtime_error),
        tests=tuple(tests),
    )
