"""The failure workflow of DOMAIN.md §3: transitions, roles, evidence, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.workflow import (
    TRANSITIONS,
    Deadlines,
    Event,
    EvidenceMissing,
    Kind,
    RoleRefused,
    State,
    TransitionRefused,
    Workflow,
    allowed_actions,
    auto_events,
    current,
    decide,
    due_at,
    is_overdue,
)

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
EVIDENCE = {"note": "n", "photo_ref": "p-1", "lab_report_no": "LAB-1", "retest_reading_id": "r-2"}


def _run(kind: Kind, steps: list[tuple[str, str, timedelta]]) -> list[Event]:
    events = auto_events(kind, T0)
    for action, role, offset in steps:
        events.append(decide(kind, events, action, "u1", role, T0 + offset, EVIDENCE))
    return events


H = timedelta(hours=1)
CONFIRMED_PATH = [
    ("object", "operator", H),
    ("lab_positive", "regulator", 30 * H),
    ("trace", "operator", 31 * H),
    ("post", "operator", 32 * H),
    ("report", "operator", 33 * H),
    ("close", "regulator", 34 * H),
]


def test_positive_suspends_sale_at_once() -> None:
    events = auto_events(Kind.POSITIVE, T0)
    assert [e.action for e in events] == ["raised", "suspend_sale"]
    status = current(events)
    assert status.state is State.SALE_SUSPENDED and status.suspended_at == T0


def test_full_path_to_closure() -> None:
    events = _run(Kind.POSITIVE, CONFIRMED_PATH)
    assert [e.to_state for e in events[2:]] == [
        State.LAB_RETEST,
        State.CONFIRMED,
        State.TRACED,
        State.POSTED,
        State.REPORTED,
        State.CLOSED,
    ]
    assert current(events).closed
    assert events[-1].note == "n" and events[-2].actor == "u1"
    assert due_at(current(events)) is None


@pytest.mark.parametrize(
    ("steps", "final"),
    [
        ([("destroy", "operator", 5 * H), ("trace", "operator", 6 * H)], State.TRACED),
        (
            [("commission_lab", "regulator", H), ("lab_negative", "operator", 9 * H), ("close", "regulator", 10 * H)],
            State.CLOSED,
        ),
    ],
)
def test_other_paths(steps: list[tuple[str, str, timedelta]], final: State) -> None:
    assert current(_run(Kind.POSITIVE, steps)).state is final


def test_suspicious_can_be_cleared_by_second_strip() -> None:
    events = _run(Kind.SUSPICIOUS, [("retest_negative", "operator", H)])
    assert current(events).state is State.RELEASED
    assert events[-1].evidence == {"photo_ref": "p-1", "lab_report_no": "LAB-1", "retest_reading_id": "r-2"}


def test_suspicious_then_suspended_has_its_own_objection_window() -> None:
    events = _run(Kind.SUSPICIOUS, [("suspend_sale", "operator", 2 * H)])
    with pytest.raises(TransitionRefused):
        decide(Kind.SUSPICIOUS, events, "destroy", "u", "operator", T0 + 5 * H, EVIDENCE)
    decide(Kind.SUSPICIOUS, events, "destroy", "u", "operator", T0 + 6 * H + timedelta(seconds=1), EVIDENCE)


def _all_states(workflow: Workflow) -> set[State]:
    states: set[State] = set()
    for tr in TRANSITIONS[workflow]:
        states |= tr.sources | {tr.target}
    return states


def _history_reaching(kind: Kind, state: State) -> list[Event]:
    """Some valid history of ``kind`` that ends in ``state`` (BFS over the table)."""
    frontier = [auto_events(kind, T0)]
    for _ in range(12):
        nxt = []
        for events in frontier:
            if current(events).state is state:
                return events
            now = events[-1].at + 5 * H
            for action in allowed_actions(kind, events, "regulator", now):
                nxt.append([*events, decide(kind, events, action, "u", "regulator", now, EVIDENCE)])
        frontier = nxt
    raise AssertionError(f"{state} unreachable")


def _forbidden_cases() -> list[tuple[Kind, State, str]]:
    cases = []
    for kind in (Kind.SUSPICIOUS, Kind.INVALID):
        workflow = Workflow.SCREEN if kind is Kind.SUSPICIOUS else Workflow.REVIEW
        actions = {tr.action for tr in TRANSITIONS[workflow]} | {"fly"}
        for state in _all_states(workflow):
            legal = {tr.action for tr in TRANSITIONS[workflow] if state in tr.sources}
            cases += [(kind, state, a) for a in sorted(actions - legal)]
    return cases


@pytest.mark.parametrize(("kind", "state", "action"), _forbidden_cases())
def test_every_forbidden_transition_is_refused_with_the_allowed_ones(kind: Kind, state: State, action: str) -> None:
    events = _history_reaching(kind, state)
    now = events[-1].at + 5 * H
    with pytest.raises(TransitionRefused) as err:
        decide(kind, events, action, "u", "regulator", now, EVIDENCE)
    assert err.value.allowed == allowed_actions(kind, events, "regulator", now)
    assert err.value.status == 409


def test_role_refused() -> None:
    events = auto_events(Kind.POSITIVE, T0)
    with pytest.raises(RoleRefused) as err:
        decide(Kind.POSITIVE, events, "commission_lab", "u", "operator", T0, EVIDENCE)
    assert err.value.status == 403 and "object" in err.value.allowed
    with pytest.raises(RoleRefused):
        decide(Kind.POSITIVE, _run(Kind.POSITIVE, CONFIRMED_PATH[:5]), "close", "u", "operator", T0 + 40 * H, EVIDENCE)
    with pytest.raises(RoleRefused):
        decide(Kind.INVALID, auto_events(Kind.INVALID, T0), "acknowledge", "u", "producer", T0)


@pytest.mark.parametrize(
    ("action", "missing"),
    [("destroy", ["photo_ref", "note"]), ("commission_lab", ["note"])],
)
def test_evidence_required(action: str, missing: list[str]) -> None:
    events = auto_events(Kind.POSITIVE, T0)
    with pytest.raises(EvidenceMissing) as err:
        decide(Kind.POSITIVE, events, action, "u", "regulator", T0 + 5 * H, {"note": ""})
    assert err.value.details["missing"] == missing and err.value.status == 422


def test_lab_result_needs_report_number() -> None:
    events = _run(Kind.POSITIVE, [("object", "operator", H)])
    with pytest.raises(EvidenceMissing):
        decide(Kind.POSITIVE, events, "lab_positive", "u", "regulator", T0 + 2 * H, {"note": "x"})


def test_unknown_evidence_refused() -> None:
    with pytest.raises(EvidenceMissing):
        decide(Kind.INVALID, auto_events(Kind.INVALID, T0), "acknowledge", "u", "operator", T0, {"bribe": 1})


@pytest.mark.parametrize(
    ("offset", "object_ok", "destroy_ok"),
    [(4 * H, True, False), (4 * H + timedelta(seconds=1), False, True), (H, True, False)],
)
def test_objection_window_boundary(offset: timedelta, object_ok: bool, destroy_ok: bool) -> None:
    events = auto_events(Kind.POSITIVE, T0)
    allowed = allowed_actions(Kind.POSITIVE, events, "operator", T0 + offset)
    assert ("object" in allowed) is object_ok
    assert ("destroy" in allowed) is destroy_ok


@pytest.mark.parametrize(
    ("kind", "steps", "due"),
    [
        (Kind.POSITIVE, [], T0 + 28 * H),  # objection deadline 4 h + 24 h to dispose
        (Kind.SUSPICIOUS, [], T0 + H),
        (Kind.INVALID, [], T0 + 24 * H),
        (Kind.INVALID, [("acknowledge", "operator", H)], T0 + H + timedelta(days=3)),
        (Kind.POSITIVE, [("object", "operator", H)], T0 + H + timedelta(days=7)),
        # traced at 12:00 Shanghai on the 28th: posting due 09:00 Shanghai on the 29th = 01:00 UTC
        (
            Kind.POSITIVE,
            [("destroy", "operator", 5 * H), ("trace", "operator", 6 * H)],
            datetime(2026, 11, 29, 1, 0, tzinfo=UTC),
        ),
    ],
)
def test_due_at(kind: Kind, steps: list[tuple[str, str, timedelta]], due: datetime) -> None:
    status = current(_run(kind, steps))
    assert due_at(status) == due
    assert not is_overdue(status, due)
    assert is_overdue(status, due + timedelta(seconds=1))


def test_wholesale_posting_is_an_hour_earlier() -> None:
    status = current(_run(Kind.POSITIVE, [("destroy", "operator", 5 * H), ("trace", "operator", 6 * H)]))
    assert due_at(status, Deadlines(), wholesale=True) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


def test_history_must_start_with_raised() -> None:
    with pytest.raises(ValueError):
        current([])
