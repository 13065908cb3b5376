"""How a provision run shows progress: a small Reporter protocol, a rich live table and a
silent implementation for tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table

from provision.execute.events import HostTally

STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "magenta",
         "skipped": "dim", "running": "cyan", "pending": "dim", "interrupted": "red"}


class Reporter(Protocol):
    def note(self, text: str) -> None: ...
    def phase_start(self, phase: str, hosts: Sequence[str]) -> None: ...
    def host_update(self, phase: str, host: str, tally: HostTally) -> None: ...
    def host_done(self, phase: str, host: str, status: str, detail: str) -> None: ...
    def phase_done(self, phase: str, status: str) -> None: ...


class QuietReporter:
    """Records what it was told (tests read ``lines``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(text)

    def phase_start(self, phase: str, hosts: Sequence[str]) -> None:
        self.lines.append(f"{phase}: start {len(hosts)}")

    def host_update(self, phase: str, host: str, tally: HostTally) -> None:
        pass

    def host_done(self, phase: str, host: str, status: str, detail: str) -> None:
        self.lines.append(f"{phase} {host} {status} {detail}")

    def phase_done(self, phase: str, status: str) -> None:
        self.lines.append(f"{phase}: {status}")


class RichReporter:
    """A live table per phase: one row per host with ok/changed/failed/unreachable counts."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._live: Live | None = None
        self._phase = ""
        self._rows: dict[str, tuple[str, HostTally, str]] = {}

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def _table(self) -> Table:
        table = Table(title=f"phase {self._phase}", title_justify="left")
        for col in ("host", "status", "ok", "changed", "failed", "unreach.", "detail"):
            table.add_column(col, overflow="fold")
        for host, (status, t, detail) in self._rows.items():
            table.add_row(host, _styled(status), str(t.ok), str(t.changed),
                          str(t.failed), str(t.unreachable), detail or t.last_task)
        return table

    def phase_start(self, phase: str, hosts: Sequence[str]) -> None:
        self._phase = phase
        self._rows = {h: ("pending", HostTally(), "") for h in hosts}
        self._live = Live(self._table(), console=self.console, refresh_per_second=4,
                          transient=False)
        self._live.start()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table())

    def host_update(self, phase: str, host: str, tally: HostTally) -> None:
        self._rows[host] = ("running", tally, "")
        self._refresh()

    def host_done(self, phase: str, host: str, status: str, detail: str) -> None:
        _, tally, _ = self._rows.get(host, ("", HostTally(), ""))
        self._rows[host] = (status, tally, detail)
        self._refresh()

    def phase_done(self, phase: str, status: str) -> None:
        if self._live is not None:
            self._refresh()
            self._live.stop()
            self._live = None
        self.console.print()
        self.console.print(f"phase {phase}: {_styled(status)}")


def _styled(status: str) -> str:
    style = STYLE.get(status, "bold")
    return f"[{style}]{status}[/]"


def summary_table(title: str, rows: Sequence[Mapping[str, str]], columns: Sequence[str]
                  ) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(row.get(c, "") for c in columns))
    return table
