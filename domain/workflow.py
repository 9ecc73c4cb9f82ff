"""The failure-handling workflow of DOMAIN.md §3, as code in one place.

Pure: no I/O, no clock of its own (every function takes ``now``).  A failure's
history is an append-only list of :class:`Event`; its current state is
derived from them (:func:`current`).  :func:`decide` checks one requested
action against the rules (state, role, evidence, time windows) and returns
the event to append, or raises :class:`TransitionRefused` naming the actions
that are allowed.

Two workflows:

* ``screen`` (positive and suspicious strips)::

    screen_positive -suspend_sale-> sale_suspended       (a positive does this at once)
    screen_positive -retest_negative-> released          (second strip on site: its server verdict negative;
                                                          positive → sale_suspended; see retest_target)
    sale_suspended  -object (within 4 h)-> lab_retest
    sale_suspended  -commission_lab-> lab_retest
    sale_suspended  -destroy (after 4 h, no objection)-> destroyed
    lab_retest      -lab_negative-> released (false positive) | -lab_positive-> confirmed
    confirmed|destroyed -trace-> traced -post-> posted -report-> reported -close-> closed
    released        -close-> closed

* ``review`` (invalid strips, verdict/cut-off mismatches, anomalies, overdue steps)::

    open -acknowledge-> acknowledged -resolve-> closed    (open -resolve-> closed too)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from domain.registry_rules import MarketRules, PostingHours, posting_deadline
from schemas.errors import AccessDenied, Conflict, InvalidInput


class Workflow(StrEnum):
    SCREEN = "screen"
    REVIEW = "review"


class State(StrEnum):
    SCREEN_POSITIVE = "screen_positive"
    SALE_SUSPENDED = "sale_suspended"
    LAB_RETEST = "lab_retest"
    DESTROYED = "destroyed"
    RELEASED = "released"
    CONFIRMED = "confirmed"
    TRACED = "traced"
    POSTED = "posted"
    REPORTED = "reported"
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Kind(StrEnum):
    """What a failure is about (SPEC.md ``GET /v1/failures``)."""

    POSITIVE = "positive"
    SUSPICIOUS = "suspicious"
    INVALID = "invalid"
    VERDICT_MISMATCH = "verdict_mismatch"
    CUTOFF_MISMATCH = "cutoff_mismatch"
    INVALID_RATE_DEVICE = "invalid_rate_device"
    INVALID_RATE_STRIP_LOT = "invalid_rate_strip_lot"
    SILENT_DEVICE = "silent_device"
    OVERDUE = "overdue"
    CERTIFICATE_HELD = "certificate_held"  # a chain record waiting too long for a parent (issue 10)


SCREEN_KINDS = frozenset({Kind.POSITIVE, Kind.SUSPICIOUS})
#: The same, as the text the failures table stores (a query parameter).
SCREEN_KIND_VALUES: tuple[str, ...] = tuple(sorted(k.value for k in SCREEN_KINDS))
ROLES = frozenset({"operator", "regulator", "system"})
RAISED = "raised"


def workflow_of(kind: Kind) -> Workflow:
    return Workflow.SCREEN if kind in SCREEN_KINDS else Workflow.REVIEW


def initial_state(kind: Kind) -> State:
    return State.SCREEN_POSITIVE if kind in SCREEN_KINDS else State.OPEN


class Window(StrEnum):
    """A time guard on an action, relative to the objection deadline."""

    ANY = "any"
    BEFORE_OBJECTION_DEADLINE = "before_objection_deadline"
    AFTER_OBJECTION_DEADLINE = "after_objection_deadline"


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[State]
    target: State
    roles: frozenset[str]
    evidence: tuple[str, ...] = ()
    window: Window = Window.ANY


def _t(
    action: str,
    sources: set[State],
    target: State,
    roles: set[str],
    evidence: tuple[str, ...] = (),
    window: Window = Window.ANY,
) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(roles), evidence, window)


_OPS = {"operator", "regulator"}
S = State

TRANSITIONS: dict[Workflow, tuple[Transition, ...]] = {
    Workflow.SCREEN: (
        _t("suspend_sale", {S.SCREEN_POSITIVE}, S.SALE_SUSPENDED, _OPS | {"system"}),
        _t("retest_negative", {S.SCREEN_POSITIVE}, S.RELEASED, _OPS, ("note", "retest_reading_id")),
        _t("object", {S.SALE_SUSPENDED}, S.LAB_RETEST, _OPS, ("note",), Window.BEFORE_OBJECTION_DEADLINE),
        _t("commission_lab", {S.SALE_SUSPENDED}, S.LAB_RETEST, {"regulator"}, ("note",)),
        _t("destroy", {S.SALE_SUSPENDED}, S.DESTROYED, _OPS, ("photo_ref", "note"), Window.AFTER_OBJECTION_DEADLINE),
        _t("lab_negative", {S.LAB_RETEST}, S.RELEASED, _OPS, ("lab_report_no",)),
        _t("lab_positive", {S.LAB_RETEST}, S.CONFIRMED, _OPS, ("lab_report_no",)),
        _t("trace", {S.CONFIRMED, S.DESTROYED}, S.TRACED, _OPS, ("note",)),
        _t("post", {S.TRACED}, S.POSTED, _OPS, ("photo_ref",)),
        _t("report", {S.POSTED}, S.REPORTED, _OPS, ("note",)),
        _t("close", {S.REPORTED, S.RELEASED}, S.CLOSED, {"regulator"}, ("note",)),
    ),
    Workflow.REVIEW: (
        _t("acknowledge", {S.OPEN}, S.ACKNOWLEDGED, _OPS),
        _t("resolve", {S.OPEN, S.ACKNOWLEDGED}, S.CLOSED, _OPS, ("note",)),
    ),
}

EVIDENCE_FIELDS = ("note", "photo_ref", "lab_report_no", "retest_reading_id", "report_ref", "vendor_signature_ref")


@dataclass(frozen=True)
class Deadlines:
    """Time limits (DOMAIN.md §3).  Only the 4 h and next-day posting are published; the rest are
    configuration defaults (uncertain)."""

    objection_window: timedelta = timedelta(hours=4)
    posting_hour_wholesale: int = 8
    posting_hour_farmers: int = 9
    timezone: str = "Asia/Shanghai"
    on_site_retest: timedelta = timedelta(hours=1)
    disposal_after_objection: timedelta = timedelta(hours=24)
    lab_turnaround: timedelta = timedelta(days=7)
    trace_within: timedelta = timedelta(days=1)
    report_within: timedelta = timedelta(days=1)
    close_within: timedelta = timedelta(days=2)
    acknowledge_within: timedelta = timedelta(hours=24)
    resolve_within: timedelta = timedelta(days=3)


@dataclass(frozen=True)
class Event:
    """One append-only entry of a failure's history."""

    action: str
    from_state: State | None
    to_state: State
    actor: str
    role: str
    at: datetime
    note: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    state: State
    since: datetime
    raised_at: datetime
    suspended_at: datetime | None

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED


class WorkflowError(Conflict):
    """Base of the refusals (a Conflict of schemas/errors.py); ``status`` is the HTTP status that fits."""

    status = 409
    code = "workflow_error"

    def __init__(self, message: str, allowed: Sequence[str] = (), details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.allowed = list(allowed)
        self.details = details or {}


class TransitionRefused(WorkflowError):
    """The step is not allowed from the failure's current state."""

    code = "transition_not_allowed"


class RoleRefused(WorkflowError, AccessDenied):
    """The principal's role may not take this step."""

    status = 403
    code = "role_not_allowed"


class EvidenceMissing(WorkflowError, InvalidInput):
    """The step needs evidence the request does not carry."""

    status = 422
    code = "evidence_missing"


def raised_event(kind: Kind, at: datetime, actor: str = "flagger", note: str | None = None) -> Event:
    return Event(RAISED, None, initial_state(kind), actor, "system", at, note)


def current(events: Sequence[Event]) -> Status:
    """The state after the events, in order; the first must be the ``raised`` one."""
    if not events or events[0].action != RAISED:
        raise ValueError("a failure history starts with its 'raised' event")
    state, since, suspended = events[0].to_state, events[0].at, None
    for event in events[1:]:
        state, since = event.to_state, event.at
        if event.to_state is State.SALE_SUSPENDED:
            suspended = event.at
    return Status(state, since, events[0].at, suspended)


def objection_deadline(status: Status, rules: Deadlines) -> datetime | None:
    return None if status.suspended_at is None else status.suspended_at + rules.objection_window


def _window_open(tr: Transition, status: Status, now: datetime, rules: Deadlines) -> bool:
    deadline = objection_deadline(status, rules)
    if tr.window is Window.ANY or deadline is None:
        return True
    if tr.window is Window.BEFORE_OBJECTION_DEADLINE:
        return now <= deadline
    return now > deadline


def allowed_actions(
    kind: Kind, events: Sequence[Event], role: str, now: datetime, rules: Deadlines | None = None
) -> list[str]:
    """Actions ``role`` may take now, in the table's order."""
    rules = rules or Deadlines()
    status = current(events)
    return [
        tr.action
        for tr in TRANSITIONS[workflow_of(kind)]
        if status.state in tr.sources and role in tr.roles and _window_open(tr, status, now, rules)
    ]


def _find(kind: Kind, action: str) -> Transition | None:
    return next((tr for tr in TRANSITIONS[workflow_of(kind)] if tr.action == action), None)


def decide(
    kind: Kind,
    events: Sequence[Event],
    action: str,
    actor: str,
    role: str,
    now: datetime,
    evidence: dict[str, Any] | None = None,
    rules: Deadlines | None = None,
) -> Event:
    """The event that ``action`` appends, or a :class:`WorkflowError` saying why not."""
    rules = rules or Deadlines()
    evidence = {k: v for k, v in (evidence or {}).items() if v not in (None, "")}
    status = current(events)
    allowed = allowed_actions(kind, events, role, now, rules)
    tr = _find(kind, action)
    if tr is None or status.state not in tr.sources:
        raise TransitionRefused(
            f"'{action}' is not allowed from state '{status.state}'", allowed, {"state": status.state.value}
        )
    if role not in tr.roles:
        raise RoleRefused(f"role '{role}' may not '{action}'", allowed, {"roles": sorted(tr.roles)})
    if not _window_open(tr, status, now, rules):
        deadline = objection_deadline(status, rules)
        side = "before" if tr.window is Window.BEFORE_OBJECTION_DEADLINE else "after"
        raise TransitionRefused(
            f"'{action}' is only allowed {side} the objection deadline",
            allowed,
            {"state": status.state.value, "objection_deadline": deadline.isoformat() if deadline else None},
        )
    missing = [name for name in tr.evidence if name not in evidence]
    if missing:
        raise EvidenceMissing(f"'{action}' needs {', '.join(missing)}", allowed, {"missing": missing})
    unknown = sorted(set(evidence) - set(EVIDENCE_FIELDS))
    if unknown:
        raise EvidenceMissing(f"unknown evidence field(s): {', '.join(unknown)}", allowed, {"unknown": unknown})
    note = evidence.pop("note", None)
    return Event(action, status.state, tr.target, actor, role, now, note, evidence)


def _next_day_at(moment: datetime, hour: int, tz: str) -> datetime:
    local = moment.astimezone(ZoneInfo(tz))
    day = local.date() + timedelta(days=1)
    return datetime.combine(day, time(hour), ZoneInfo(tz)).astimezone(UTC)


def due_at(status: Status, rules: Deadlines | None = None, wholesale: bool = False,
           market: MarketRules | None = None) -> datetime | None:
    """When the step the failure waits on is due; None once closed.  ``market``: the registry's kind
    and time zone of the failure's market, which then decide the posting deadline."""
    rules = rules or Deadlines()
    s, since = status.state, status.since
    if s is State.CLOSED:
        return None
    if s is State.TRACED and market is not None:
        return posting_deadline(since, market, PostingHours(rules.posting_hour_wholesale, rules.posting_hour_farmers))
    if s is State.TRACED:
        hour = rules.posting_hour_wholesale if wholesale else rules.posting_hour_farmers
        return _next_day_at(since, hour, rules.timezone)
    if s is State.SALE_SUSPENDED:
        deadline = objection_deadline(status, rules) or since + rules.objection_window
        return deadline + rules.disposal_after_objection
    step: dict[State, timedelta] = {
        State.SCREEN_POSITIVE: rules.on_site_retest,
        State.LAB_RETEST: rules.lab_turnaround,
        State.DESTROYED: rules.trace_within,
        State.CONFIRMED: rules.trace_within,
        State.POSTED: rules.report_within,
        State.REPORTED: rules.close_within,
        State.RELEASED: rules.close_within,
        State.OPEN: rules.acknowledge_within,
        State.ACKNOWLEDGED: rules.resolve_within,
    }
    return since + step[s]


def is_overdue(status: Status, now: datetime, rules: Deadlines | None = None, wholesale: bool = False) -> bool:
    due = due_at(status, rules, wholesale)
    return due is not None and now > due


def auto_events(kind: Kind, raised_at: datetime) -> list[Event]:
    """The history a new failure starts with: a positive suspends the sale at once."""
    events = [raised_event(kind, raised_at)]
    if kind is Kind.POSITIVE:
        events.append(
            Event(
                "suspend_sale",
                State.SCREEN_POSITIVE,
                State.SALE_SUSPENDED,
                "flagger",
                "system",
                raised_at,
                "positive screen: sale suspended at once",
            )
        )
    return events


class Outcome(StrEnum):
    """How a screen failure ended (DOMAIN.md §3): a lab-negative release is a false positive."""

    CONFIRMED = "confirmed"
    DESTROYED = "destroyed"
    RELEASED_ON_RETEST = "released_on_retest"
    FALSE_POSITIVE = "false_positive"


_OUTCOME_OF = {
    "lab_positive": Outcome.CONFIRMED,
    "destroy": Outcome.DESTROYED,
    "lab_negative": Outcome.FALSE_POSITIVE,
}


def outcome(events: Sequence[Event]) -> str | None:
    """The outcome the history has reached so far (None while undecided)."""
    found: Outcome | None = None
    for e in events:
        if e.action in _OUTCOME_OF:
            found = _OUTCOME_OF[e.action]
        elif e.action == "retest_negative" and e.to_state is State.RELEASED:
            found = Outcome.RELEASED_ON_RETEST
    return found.value if found else None


# --- the on-site retest (DOMAIN.md §3: "optional second strip on site") ---


@dataclass(frozen=True)
class SampleFacts:
    """What identifies a reading's sample, and the server's verdict on it (None: not judged yet)."""

    reading_id: str
    measured_at: datetime
    market_id: str | None
    analyte: str | None
    commodity: str | None
    sample_id: str | None
    server_result: str | None = None


class RetestRefused(WorkflowError, InvalidInput):
    """The named retest is not a reading of the same sample after the first."""

    status = 422
    code = "retest_refused"


def retest_target(first: SampleFacts, retest: SampleFacts | None, window: timedelta) -> State:
    """Where ``retest_negative`` leads, decided by the retest's **server** verdict: negative → released,
    positive → sale suspended.  The retest must be a real reading of the same sample (the same
    sample_id, or the same market, analyte and commodity measured within ``window`` of the first),
    measured after the first; anything else is refused with the reason."""
    if retest is None:
        raise RetestRefused("retest_reading_id names no reading (in your markets)", (), {"reason": "unknown"})
    if retest.reading_id == first.reading_id:
        raise RetestRefused("the retest must be another reading than the screen", (), {"reason": "same_reading"})
    if retest.analyte != first.analyte:
        raise RetestRefused(
            f"the retest tested {retest.analyte}, the screen {first.analyte}", (), {"reason": "other_analyte"}
        )
    if retest.measured_at <= first.measured_at:
        raise RetestRefused(
            f"the retest was measured at {retest.measured_at.isoformat()}, not after the screen "
            f"({first.measured_at.isoformat()})", (), {"reason": "not_after"},
        )
    same_id = first.sample_id is not None and retest.sample_id == first.sample_id
    same_goods = (retest.market_id, retest.commodity) == (first.market_id, first.commodity)
    if not same_id and not (same_goods and retest.measured_at - first.measured_at <= window):
        raise RetestRefused(
            "the retest is not of the same sample: it needs the same sample_id, or the same market, analyte "
            f"and commodity measured within {window} after the screen", (), {"reason": "other_sample"},
        )
    if retest.server_result == "negative":
        return State.RELEASED
    if retest.server_result == "positive":
        return State.SALE_SUSPENDED
    if retest.server_result is None:
        raise RetestRefused("the retest reading has not been judged yet; try again shortly", (),
                            {"reason": "not_judged"})
    raise RetestRefused(
        f"the retest was judged {retest.server_result}: only a negative releases, a positive suspends the sale",
        (), {"reason": retest.server_result},
    )
