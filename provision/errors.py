"""The small exception hierarchy every gpuctl layer raises and the CLI catches once.

Each error carries a one-line, user-facing message that names the file, host or field at
fault. The CLI prints ``str(error)`` and exits with ``error.exit_code``; tracebacks are only
shown with ``--debug``.
"""

from __future__ import annotations


class GpuctlError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code: int = 1


class UsageError(GpuctlError):
    """Bad command-line input or an unreadable file (exit 2)."""

    exit_code = 2


class SiteLoadError(GpuctlError):
    """A site file cannot be read or does not validate (exit 2 for lint)."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 col: int | None = None, code: str = "GPU001", hint: str = "",
                 subject: str = "") -> None:
        self.file = file
        self.line = line
        self.col = col
        self.code = code
        self.reason = message
        self.hint = hint
        self.subject = subject
        where = ""
        if file is not None:
            where = file
            if line is not None:
                where += f":{line}"
                if col is not None:
                    where += f":{col}"
            where += ": "
        super().__init__(f"{where}{message}")


class SiteSchemaError(SiteLoadError):
    """A site or catalog file was read but some of its values are wrong.

    Carries every positioned error (``errors``); its own message is the first one, so a
    command that reports one line still names the file, line and field.
    """

    def __init__(self, errors: list[SiteLoadError]) -> None:
        if not errors:
            raise ValueError("SiteSchemaError needs at least one error")
        first = errors[0]
        super().__init__(first.reason, file=first.file, line=first.line, col=first.col,
                         code=first.code, hint=first.hint)
        self.errors = errors


class PlanError(GpuctlError):
    """The site validates but cannot be built (e.g. a pool is exhausted).

    ``hint``, when given, is the one fix for it: the message reads ``reason; hint`` and lint
    reports ``reason`` with that hint instead of its generic one."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        self.reason = message
        self.hint = hint
        super().__init__(f"{message}; {hint}" if hint else message)


class ParseError(GpuctlError):
    """A tool's output is not in the format its parser expects."""


class ExecutionError(GpuctlError):
    """A side effect failed: a BMC, SSH, Ansible or subprocess step."""


class LabError(GpuctlError):
    """The local lab could not be brought up, inspected or torn down."""
