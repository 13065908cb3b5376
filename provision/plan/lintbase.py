"""What every lint rule shares: the Finding type, the rule registry and grouping of repeats.

A rule is a function ``LoadedSite -> Iterator[Finding]`` registered with ``@rule``; it names
the field at fault by its path in the site document (``("halls", 0, "rows", 1, "y_m")``) and
lint turns that path into ``file:line:col``. The codes are listed in ``provision.plan.lint``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from provision.errors import PlanError
from provision.loader import LoadedSite, Loc
from provision.plan.layout import Node, layout_racks, place_nodes

EXAMPLES = 3
"""How many instances a grouped finding names in its one line."""


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    hint: str
    loc: Loc
    severity: str = "error"
    file: str = ""
    line: int = 0
    col: int = 0
    subject: str = ""
    """What the finding is about (a rack, a host); named in the examples of a grouped finding."""
    count: int = 1
    """How many findings of this code at this position were grouped into this one."""
    examples: tuple[str, ...] = ()
    """Subjects (or messages) of the grouped findings, in order."""
    fix_in_plan_error: bool = False
    """The plan build raised it with its one fix (``PlanError.hint``): ``gpuctl plan``'s
    one-line error names that fix too (``message; hint``), as the build's error did."""

    def text(self) -> str:
        sev = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {self.code} {sev}{self.message}" \
            f"{self.more()} (fix: {self.hint})"

    def more(self) -> str:
        """`` (and 64 more like it: a02, a03, a04, ...)`` for a grouped finding."""
        if self.count == 1:
            return ""
        shown = [e for e in self.examples[1:EXAMPLES + 1] if e]
        if not shown or not self.subject:
            return f" (and {self.count - 1} more like it at this line; --format json lists them)"
        tail = ", ..." if self.count - 1 > len(shown) else ""
        return f" (and {self.count - 1} more like it: {', '.join(shown)}{tail})"


Rule = Callable[[LoadedSite], Iterator[Finding]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a lint rule (run on every schema-valid site, before the plan is built)."""
    RULES.append(fn)
    return fn


def finding(code: str, message: str, hint: str, *loc: str | int, subject: str = "",
            severity: str = "error") -> Finding:
    """A finding at the field path ``loc`` (positioned later by lint)."""
    return Finding(code, message, hint, tuple(loc), severity=severity, subject=subject)


def group(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per (code, position): repeats become a count and the first examples.

    A mistake in a row's rack spec is true of every rack of the row and points at the same
    line; a reviewer wants it once with how many racks it hits, not 65 near-identical lines.
    """
    groups: dict[tuple[str, str, str, int, int], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.severity, f.code, f.file, f.line, f.col), []).append(f)
    out = []
    for members in groups.values():
        first = members[0]
        if len(members) == 1:
            out.append(first)
            continue
        examples = tuple(m.subject or m.message for m in members)
        out.append(replace(first, count=sum(m.count for m in members), examples=examples))
    return out


_PLACED: list[tuple[weakref.ref[LoadedSite], list[Node] | None]] = []
"""The last site's placed nodes (held by a weak reference: it never keeps a site alive)."""


def placed_nodes(ls: LoadedSite) -> list[Node] | None:
    """The site's nodes in their racks, placed once for all the rules of one lint run; None
    when they cannot be placed (an unknown node type or too few racks: GPU124 / GPU112)."""
    if _PLACED and _PLACED[0][0]() is ls:
        return _PLACED[0][1]
    try:
        nodes: list[Node] | None = place_nodes(ls.site, ls.catalog, layout_racks(ls.site))
    except PlanError:
        nodes = None
    _PLACED[:] = [(weakref.ref(ls), nodes)]
    return nodes
