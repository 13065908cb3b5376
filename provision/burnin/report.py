"""A burn-in run as a report: per-node verdict table (rich), JSON and JUnit XML.

Failures always come first: in the node table, in the JSON node list and in the JUnit
testcases. :mod:`provision.burnin.html` renders the same :class:`RunReport` as HTML.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any

from provision.burnin.isolate import Isolation
from provision.burnin.judge import FAIL, PASS, SKIP, WARN, Verdict
from provision.burnin.runner import Collective

STATUS_ORDER = {FAIL: 0, WARN: 1, SKIP: 2, PASS: 3}
TEST_ORDER = ("gpu-count", "gpu-model", "nvidia-smi", "xid", "ecc", "row-remap", "pcie",
              "nvlink", "ib-port", "ibstat", "dcgm-r2", "dcgm-r3", "nccl-single", "a2a-single",
              "ib-write-bw", "ib-write-lat", "nccl-rack", "nccl-leaf", "nccl-a2a",
              "nccl-cross", "soak-trend")
"""Most fundamental first: a missing GPU explains a failed NCCL run, not the other way."""


def verdict_rank(v: Verdict) -> tuple[int, str, str]:
    rank = TEST_ORDER.index(v.test) if v.test in TEST_ORDER else len(TEST_ORDER)
    return rank, v.test, v.rail or ""


@dataclass(frozen=True)
class NodeSummary:
    node: str
    status: str
    failures: tuple[Verdict, ...]
    warnings: tuple[Verdict, ...]
    state: str = ""

    @property
    def failed_rails(self) -> tuple[str, ...]:
        return tuple(sorted({v.rail for v in self.failures if v.rail}))


@dataclass
class RunReport:
    site: str
    rack: str
    level: str
    profile: str
    run_id: int
    nodes: list[str]
    verdicts: list[Verdict]
    pairs: list[Verdict] = field(default_factory=list)
    collectives: list[Collective] = field(default_factory=list)
    isolations: dict[str, Isolation] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fabric_status: str = "skipped"
    fabric_detail: str = ""
    states: dict[str, str] = field(default_factory=dict)
    store: str = ""

    @property
    def ok(self) -> bool:
        return self.fabric_status != FAIL and all(s.status != FAIL for s in self.summaries())

    def summaries(self) -> list[NodeSummary]:
        """One per node, failed nodes first (then by name)."""
        out = []
        for node in self.nodes:
            mine = sorted((v for v in self.verdicts if v.node == node), key=verdict_rank)
            fails = tuple(_dedupe(v for v in mine if v.status == FAIL))
            warns = tuple(_dedupe(v for v in mine if v.status == WARN))
            status = FAIL if fails else (WARN if warns else PASS)
            out.append(NodeSummary(node, status, fails, warns, self.states.get(node, "")))
        return sorted(out, key=lambda s: (STATUS_ORDER[s.status], s.node))

    def failed_nodes(self) -> list[str]:
        return [s.node for s in self.summaries() if s.status == FAIL]

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site, "rack": self.rack, "level": self.level,
            "profile": self.profile, "run": self.run_id, "ok": self.ok, "store": self.store,
            "fabric": {"status": self.fabric_status, "detail": self.fabric_detail},
            "nodes": [{"node": s.node, "status": s.status, "state": s.state,
                       "failed_rails": list(s.failed_rails),
                       "failures": [_vjson(v) for v in s.failures],
                       "warnings": [_vjson(v) for v in s.warnings]} for s in self.summaries()],
            "collectives": [asdict(c) for c in self.collectives],
            "isolation": {k: {"bad": list(i.bad), "confirmed": list(i.confirmed),
                              "suspects": list(i.suspects), "rounds": i.rounds,
                              "tests": i.tests, "notes": list(i.notes)}
                          for k, i in sorted(self.isolations.items())},
            "versions": self.versions, "notes": self.notes,
            "verdicts": [_vjson(v) for v in self.verdicts],
        }


def _dedupe(verdicts: Any) -> list[Verdict]:
    seen: set[tuple[str, str | None, str]] = set()
    out = []
    for v in verdicts:
        key = (v.test, v.rail, v.reason)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _vjson(v: Verdict) -> dict[str, Any]:
    return {k: val for k, val in asdict(v).items() if val not in (None, "")}


def case_name(v: Verdict) -> str:
    parts = [v.test] + ([v.rail] if v.rail else []) + ([f"peer {v.peer}"] if v.peer else [])
    return " ".join(parts)


def junit_xml(report: RunReport) -> str:
    """JUnit XML: one testsuite per node (failed nodes first), one testcase per verdict
    (failures first); fabric verify is its own suite."""
    suites = ET.Element("testsuites", name=f"burnin {report.site} rack {report.rack}")
    total = failures = skipped = 0
    fabric = ET.SubElement(suites, "testsuite", name=f"{report.site}.{report.rack}.fabric")
    case = ET.SubElement(fabric, "testcase", classname=f"{report.site}.fabric",
                         name=f"fabric verify rack={report.rack}")
    _status(case, report.fabric_status, report.fabric_detail, "")
    fabric.set("tests", "1")
    fabric.set("failures", "1" if report.fabric_status == FAIL else "0")
    fabric.set("skipped", "1" if report.fabric_status == SKIP else "0")
    total += 1
    failures += report.fabric_status == FAIL
    skipped += report.fabric_status == SKIP
    for s in report.summaries():
        mine = sorted((v for v in report.verdicts if v.node == s.node),
                      key=lambda v: (STATUS_ORDER.get(v.status, 9), *verdict_rank(v)))
        suite = ET.SubElement(suites, "testsuite", name=f"{report.site}.{s.node}")
        counts = {FAIL: 0, SKIP: 0}
        for v in mine:
            case = ET.SubElement(suite, "testcase", classname=f"{report.site}.{s.node}",
                                 name=case_name(v))
            _status(case, v.status, v.reason, v.fix)
            counts[v.status] = counts.get(v.status, 0) + 1
        suite.set("tests", str(len(mine)))
        suite.set("failures", str(counts[FAIL]))
        suite.set("errors", "0")
        suite.set("skipped", str(counts[SKIP]))
        total += len(mine)
        failures += counts[FAIL]
        skipped += counts[SKIP]
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", "0")
    suites.set("skipped", str(skipped))
    ET.indent(suites)
    buf = io.BytesIO()
    ET.ElementTree(suites).write(buf, encoding="utf-8", xml_declaration=True)
    return buf.getvalue().decode() + "\n"


def _status(case: ET.Element, status: str, reason: str, fix: str) -> None:
    if status == FAIL:
        failure = ET.SubElement(case, "failure", message=reason, type="burnin")
        failure.text = f"{reason}\nfix: {fix}" if fix else reason
    elif status == SKIP:
        ET.SubElement(case, "skipped", message=reason)
    else:
        ET.SubElement(case, "system-out").text = f"{status}: {reason}"


def remediation(report: RunReport) -> list[str]:
    """Dry-run cordon/drain commands for failed nodes (printed, never run)."""
    lines = []
    for s in report.summaries():
        if s.status != FAIL:
            continue
        why = f"burnin run {report.run_id}: {s.failures[0].test}"
        lines += [f"kubectl cordon {s.node}",
                  f"kubectl drain {s.node} --ignore-daemonsets --delete-emptydir-data",
                  f"scontrol update NodeName={s.node} State=DRAIN Reason=\"{why}\""]
    return lines


def render_text(report: RunReport, width: int = 140) -> str:
    """The per-node verdict table and what to fix, as plain text (rich, no colour)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=width, color_system=None, record=True)
    verdict = "PASS" if report.ok else "FAIL"
    table = Table(title=f"burn-in {report.site} rack {report.rack} ({report.level}, profile "
                  f"{report.profile}, run {report.run_id}): {verdict}", expand=False)
    for col in ("node", "verdict", "state", "failed", "what to fix"):
        table.add_column(col, overflow="fold")
    for s in report.summaries():
        what = "\n".join(f"{v.test}{' ' + v.rail if v.rail else ''}: {v.reason}"
                         for v in s.failures + s.warnings) or "all checks passed"
        fixes = "\n".join(dict.fromkeys(f"{v.test}: {v.fix}" for v in s.failures if v.fix))
        table.add_row(s.node, s.status.upper(), s.state, what, fixes)
    console.print(table)
    console.print(f"fabric verify: {report.fabric_status}"
                  + (f" ({report.fabric_detail})" if report.fabric_detail else ""))
    for label, iso in sorted(report.isolations.items()):
        console.print(f"isolation {label}: bad {', '.join(iso.bad) or '-'}; suspects "
                      f"{', '.join(iso.suspects) or '-'}; {iso.rounds} rounds, {iso.tests} tests")
    for note in report.notes:
        console.print(f"note: {note}")
    commands = remediation(report)
    if commands:
        console.print("failed nodes: cordon/drain them (dry run, not executed):")
        for line in commands:
            console.print(f"  {line}", markup=False)
    return console.export_text()
