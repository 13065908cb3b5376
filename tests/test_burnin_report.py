"""Burn-in reports: JUnit XML validity and order, self-contained HTML, text table, JSON."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from provision.burnin.html import render_html
from provision.burnin.isolate import Isolation
from provision.burnin.judge import FAIL, PASS, SKIP, WARN, Verdict
from provision.burnin.report import RunReport, junit_xml, remediation, render_text
from provision.burnin.runner import Collective


def sample(fabric: str = "pass") -> RunReport:
    v = [
        Verdict("n1", "nvidia-smi", PASS, "8 GPUs"),
        Verdict("n1", "ib-write-bw", PASS, "mlx5_0 to n2: 192 Gb/s", rail="mlx5_0", peer="n2",
                metric="bw_gbps", value=192.0, threshold=180.0),
        Verdict("n2", "ib-write-bw", FAIL, "mlx5_0 to n1: 95 Gb/s < 180 <&> \"q\"",
                rail="mlx5_0", peer="n1", metric="bw_gbps", value=95.0, threshold=180.0,
                fix="replace the cable"),
        Verdict("n2", "nccl-single", PASS, "busbw 226", metric="busbw_gbps", value=226.0,
                threshold=210.0),
        Verdict("n1", "nccl-single", PASS, "busbw 225", metric="busbw_gbps", value=225.0,
                threshold=210.0),
        Verdict("n3", "nccl-rack", SKIP, "kept out"),
        Verdict("n3", "xid", FAIL, "Xid 79", fix="RMA"),
        Verdict("n4", "nccl-rack", WARN, "inconclusive"),
    ]
    pairs = [Verdict("n2", "ib-write-bw", FAIL, "x", rail="mlx5_0", peer="n1", value=95.0,
                     threshold=180.0),
             Verdict("n1", "ib-write-bw", PASS, "y", rail="mlx5_1", peer="n2", value=192.0,
                     threshold=180.0)]
    iso = Isolation(("n2",), ("n2",), (), ("n1",), 2, 3, ())
    return RunReport("lab", "a01", "standard", "a100-hdr", 7, ["n1", "n2", "n3", "n4"], v,
                     pairs, [Collective("rack-a01", ("n1", "n2"), False, 90.0, "busbw 90")],
                     {"rack-a01": iso}, {"n1": {"driver": "580"}}, ["a note"], fabric,
                     "4/4 matched")


def test_junit_is_valid_and_failures_come_first() -> None:
    text = junit_xml(sample())
    root = ET.fromstring(text.encode())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["lab.a01.fabric", "lab.n2", "lab.n3",
                                                "lab.n4", "lab.n1"]
    total = 0
    for s in suites:
        cases = s.findall("testcase")
        assert s.get("tests") == str(len(cases))
        assert s.get("failures") == str(len(s.findall("testcase/failure")))
        assert s.get("skipped") == str(len(s.findall("testcase/skipped")))
        flags = [c.find("failure") is not None for c in cases]
        assert flags == sorted(flags, reverse=True)
        assert all(c.get("classname") and c.get("name") for c in cases)
        total += len(cases)
    assert root.get("tests") == str(total) and root.get("failures") == "2"
    n2 = suites[1].find("testcase/failure")
    assert n2 is not None and n2.get("message", "").endswith('<&> "q"')
    assert "fix: replace the cable" in (n2.text or "")
    assert suites[1].find("testcase").get("name") == "ib-write-bw mlx5_0 peer n1"  # type: ignore[union-attr]


def test_fabric_failure_fails_the_run_and_its_suite() -> None:
    report = sample("fail")
    assert not report.ok
    root = ET.fromstring(junit_xml(report).encode())
    assert root.find("testsuite/testcase/failure") is not None
    skipped = ET.fromstring(junit_xml(sample("skip")).encode())
    assert skipped.find("testsuite/testcase/skipped") is not None


def test_html_is_self_contained_with_plots_and_failures_first() -> None:
    html = render_html(sample())
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2
    assert not re.search(r"""(src|href)\s*=|<script|<link|@import|url\(""", html)
    without_ns = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in without_ns and "https://" not in without_ns
    assert "&lt;&amp;&gt; &quot;q&quot;" in html and '<&> "q"' not in html
    assert html.index("<h2>Failures</h2>") < html.index("<h2>Nodes</h2>")
    assert html.index(">n2<") < html.index(">n1<")
    assert "floor 210" in html and "mlx5_0" in html


def test_text_table_json_and_remediation() -> None:
    report = sample()
    text = render_text(report)
    assert "FAIL" in text and "replace the cable" in text and "isolation rack-a01: bad n2" in text
    assert remediation(report) == [
        "kubectl cordon n2", "kubectl drain n2 --ignore-daemonsets --delete-emptydir-data",
        'scontrol update NodeName=n2 State=DRAIN Reason="burnin run 7: ib-write-bw"',
        "kubectl cordon n3", "kubectl drain n3 --ignore-daemonsets --delete-emptydir-data",
        'scontrol update NodeName=n3 State=DRAIN Reason="burnin run 7: xid"']
    data = json.loads(json.dumps(report.to_json()))
    assert [n["node"] for n in data["nodes"]] == ["n2", "n3", "n4", "n1"]
    assert data["nodes"][0]["failed_rails"] == ["mlx5_0"]
    assert data["isolation"]["rack-a01"]["bad"] == ["n2"] and data["ok"] is False
