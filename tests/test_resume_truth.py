"""``--resume`` follows the latest truth per host: property tests of the decision against
random histories, and the stale-resume sequence on a real store."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provision.execute.phases import PHASES
from provision.execute.resume import NOTHING_DONE, OK_STATES, Attempt, done
from provision.execute.store import open_store

HOSTS = ("h1", "h2", "h3")
RUN_PHASES = ("preflight", "image", "base", "nvidia")
STATUSES = ("ok", "changed", "failed", "unreachable", "skipped", "running", "interrupted")


@st.composite
def histories(draw: st.DrawFn) -> list[Attempt]:
    """Runs in order; each does a phase subset in run order on some hosts and may be killed
    part-way (later phases absent, the current one left ``running``)."""
    out: list[Attempt] = []
    for run in range(1, draw(st.integers(0, 6)) + 1):
        version = draw(st.sampled_from(("v1", "v2")))
        phases = [p for p in RUN_PHASES if draw(st.booleans())]
        hosts = draw(st.lists(st.sampled_from(HOSTS), min_size=1, unique=True))
        killed_at = draw(st.integers(0, len(phases)))
        seq = 0.0
        for i, phase in enumerate(phases[:killed_at + 1]):
            for host in hosts:
                status = draw(st.sampled_from(STATUSES)) if i < killed_at else "running"
                seq += 1
                out.append(Attempt(run, seq, phase, host, status, version))
    return out


def spec(history: list[Attempt], version: str) -> set[tuple[str, str]]:
    """The decision as a statement: a success of (phase, host) under ``version`` that no
    later attempt of the same phase on that host, and no later re-imaging of that host
    (for the phases after image), superseded."""
    order = sorted(history, key=lambda a: (a.run_id, a.seq))
    out = set()
    for i, a in enumerate(order):
        if a.status not in OK_STATES or a.plan_version != version:
            continue
        later = [b for b in order[i + 1:] if b.host == a.host and b.status not in NOTHING_DONE]
        redone = any(b.phase == a.phase for b in later)
        reimaged = PHASES.index(a.phase) > PHASES.index("image") and any(
            b.phase == "image" for b in later)
        if not redone and not reimaged:
            out.add((a.phase, a.host))
    return out


@settings(max_examples=400, deadline=None)
@given(histories(), st.sampled_from(("v1", "v2")))
def test_resume_decision_matches_its_statement(history: list[Attempt], version: str) -> None:
    assert done(history, version, PHASES) == spec(history, version)


@settings(max_examples=200, deadline=None)
@given(histories(), st.sampled_from(HOSTS), st.sampled_from(RUN_PHASES))
def test_a_new_success_counts_and_reimaging_voids_later_phases(
        history: list[Attempt], host: str, phase: str) -> None:
    before = done(history, "v1", PHASES)
    run = max((a.run_id for a in history), default=0) + 1
    after = done([*history, Attempt(run, 1.0, phase, host, "ok", "v1")], "v1", PHASES)
    assert (phase, host) in after
    if phase == "image":
        assert not {(p, h) for p, h in after if h == host and p in ("base", "nvidia")}
    else:
        assert before - after <= {(phase, host)}  # nothing else of any host is forgotten


@settings(max_examples=200, deadline=None)
@given(histories())
def test_skipped_attempts_change_nothing(history: list[Attempt]) -> None:
    run = max((a.run_id for a in history), default=0) + 1
    noise = [Attempt(run, float(i), p, h, "skipped", "v1")
             for i, (p, h) in enumerate((p, h) for p in RUN_PHASES for h in HOSTS)]
    assert done([*history, *noise], "v1", PHASES) == done(history, "v1", PHASES)


def test_stale_resume_reruns_base_after_a_reimage_killed_in_base(tmp_path: object) -> None:
    """ok run -> re-image run killed in base -> --resume: base runs again on every host."""
    from pathlib import Path

    db = Path(str(tmp_path)) / "r.db"
    with open_store(db) as s:
        first = s.record_run(kind="provision", site="lab", plan_version="v1")
        for phase in ("preflight", "image", "base"):
            for host in HOSTS:
                s.record_result(first, phase, host, "ok")
        s.finish_run(first, "ok")
        again = s.record_run(kind="provision", site="lab", plan_version="v1")
        for host in HOSTS:
            s.record_result(again, "image", host, "changed")
        s.record_phase(again, "base", "running")
        s.finish_run(again, "interrupted", "killed")  # nothing of base was recorded
        skip = s.succeeded("provision", "lab", "v1", phases=PHASES)
    assert skip == {("preflight", h) for h in HOSTS} | {("image", h) for h in HOSTS}
    assert not {h for p, h in skip if p == "base"}, "a stale base success would be skipped"
