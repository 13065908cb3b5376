"""The pure event -> result functions fed by ansible-runner's event_handler."""

from __future__ import annotations

from typing import Any

from provision.execute import events


def ev(kind: str, host: str = "h1", task: str = "t", **res: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"host": host, "task": task, "res": res}
    if "ignore_errors" in res:
        data["ignore_errors"] = res.pop("ignore_errors")
    return {"event": kind, "event_data": data}


def test_ok_changed_failed_unreachable_skipped() -> None:
    assert events.task_event(ev("runner_on_ok")) == events.TaskEvent("h1", "t", "ok")
    assert events.task_event(ev("runner_on_ok", changed=True)).outcome == "changed"  # type: ignore[union-attr]
    failed = events.task_event(ev("runner_on_failed", msg="boom\n  now"))
    assert failed == events.TaskEvent("h1", "t", "failed", "boom now")
    assert events.task_event(ev("runner_on_unreachable", msg="no route")).outcome == "unreachable"  # type: ignore[union-attr]
    assert events.task_event(ev("runner_on_skipped")).outcome == "skipped"  # type: ignore[union-attr]


def test_ignored_failure_counts_as_ok_and_no_log_hides_message() -> None:
    assert events.task_event(ev("runner_on_failed", ignore_errors=True)).outcome == "ok"  # type: ignore[union-attr]
    hidden = events.task_event(ev("runner_on_failed", msg="password=hunter2", _ansible_no_log=True))
    assert hidden is not None and "hunter2" not in hidden.message


def test_events_without_a_host_task_are_ignored() -> None:
    assert events.task_event({"event": "playbook_on_start", "event_data": {}}) is None
    assert events.task_event({"event": "runner_on_ok", "event_data": {}}) is None
    assert events.task_event({"event": "verbose", "stdout": "x"}) is None


def test_apply_is_pure_and_counts_like_ansible() -> None:
    start: dict[str, events.HostTally] = {}
    a = events.apply(start, events.TaskEvent("h1", "copy", "changed"))
    b = events.apply(a, events.TaskEvent("h1", "tmpl", "failed", "bad template"))
    c = events.apply(b, events.TaskEvent("h1", "later", "failed", "second"))
    assert start == {}
    assert a["h1"].ok == 1 and a["h1"].changed == 1 and a["h1"].status == "changed"
    assert c["h1"].failed == 2 and c["h1"].message == "bad template"
    assert c["h1"].status == "failed" and c["h1"].last_task == "later"


def test_stats_event() -> None:
    stats = events.stats_event({"event": "playbook_on_stats", "event_data": {
        "ok": {"h1": 5, "h2": 3}, "changed": {"h1": 2}, "failures": {"h2": 1},
        "dark": {"h3": 1}, "skipped": {}, "rescued": {}, "ignored": {}}})
    assert stats is not None
    assert stats["h1"]["changed"] == 2 and events.stats_status(stats["h1"]) == "changed"
    assert events.stats_status(stats["h2"]) == "failed"
    assert events.stats_status(stats["h3"]) == "unreachable"
    assert events.stats_event({"event": "runner_on_ok"}) is None
