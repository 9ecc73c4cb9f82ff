"""Failures: list, one with its reading and history, workflow actions, and the live SSE feed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, Database, Db, Principal, SettingsDep, require_role
from api.errors import ApiError
from api.events import FeedOptions, parse_last_event_id, stream
from api.failure_models import FailureDetail, FailureOut
from api.pagination import Page, decode_time_cursor, page_of, page_size, time_key
from domain import workflow
from domain.failures import deadlines_from
from schemas.common import AwareDatetime, Identifier
from storage import failures as q
from storage import registry
from storage.audit import record_audit
from storage.readings import get_reading, get_reading_at

router = APIRouter(prefix="/v1/failures", tags=["failures"])
#: Market operators and regulators; producers only submit certificates (SPEC.md "Access").
Staff = Annotated[Principal, Depends(require_role("operator", "regulator"))]

Kinds = Annotated[list[workflow.Kind] | None, Query(description="failure kinds (repeatable)")]
States = Annotated[list[workflow.State] | None, Query(description="workflow states (repeatable)")]


@router.get("", response_model=Page[FailureOut])
def failures(
    db: Db,
    principal: Staff,
    settings: SettingsDep,
    clock: ClockDep,
    market_id: Identifier | None = None,
    station_id: Identifier | None = None,
    device_id: Identifier | None = None,
    analyte: Identifier | None = None,
    commodity: Annotated[str | None, Query(max_length=200)] = None,
    strip_lot: Identifier | None = None,
    kind: Kinds = None,
    state: States = None,
    outcome: Annotated[list[workflow.Outcome] | None, Query(description="outcomes (repeatable)")] = None,
    open: Annotated[bool, Query(description="only failures not yet closed")] = False,
    overdue: Annotated[bool, Query(description="only open failures past their step's deadline")] = False,
    since: Annotated[AwareDatetime | None, Query(description="raised_at >= since (RFC 3339)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="raised_at < until (RFC 3339)")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[FailureOut]:
    """Failures filtered by market, station, device, analyte, commodity, kind, state, outcome, overdue and time."""
    size = page_size(limit, settings)
    if market_id is not None and not principal.sees_market(market_id):
        return Page[FailureOut](items=[])
    f = q.FailureFilter(
        markets=principal.market_filter(),
        market_id=market_id,
        station_id=station_id,
        device_id=device_id,
        analyte=analyte,
        commodity=commodity,
        strip_lot=strip_lot,
        kinds=[k.value for k in kind] if kind else None,
        states=[s.value for s in state] if state else None,
        outcomes=[o.value for o in outcome] if outcome else None,
        open_only=open,
        overdue_at=clock() if overdue else None,
        since=since,
        until=until,
    )
    rows = q.list_failures(db, f, size + 1, decode_time_cursor(cursor))
    now = clock()
    for row in rows:
        row["overdue"] = row["closed_at"] is None and row["due_at"] is not None and row["due_at"] < now
    return page_of(rows, size, lambda r: time_key(r["raised_at"], r["failure_id"]), lambda r: FailureOut(**r))


@router.get("/stream", response_class=StreamingResponse)
async def failure_stream(
    request: Request,
    principal: Staff,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[int | None, Query(ge=0, description="resume after this event id")] = None,
    max_events: Annotated[int | None, Query(ge=1, le=100_000, description="close after this many events")] = None,
    timeout_s: Annotated[float | None, Query(gt=0, le=86_400, description="close after this long")] = None,
) -> StreamingResponse:
    """Live failures as Server-Sent Events; reconnect with ``Last-Event-ID`` to miss nothing."""
    after = parse_last_event_id(last_event_id_header)
    if after is None:
        after = last_event_id
    database: Database = request.app.state.database
    options = FeedOptions(principal.market_filter(), after, max_events, timeout_s)
    return StreamingResponse(
        stream(request, database, options),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _found(db: Db, failure_id: UUID, principal: Principal, lock: bool = False) -> dict[str, Any]:
    found = q.get_failure(db, failure_id, principal.market_filter(), lock)
    if found is None:
        raise ApiError(404, "not_found", f"no failure {failure_id}")
    return found


def _detail(
    db: Db, found: dict[str, Any], principal: Principal, now: datetime, deadlines: workflow.Deadlines,
    history: list[dict[str, Any]],
) -> FailureDetail:
    """The failure's page: its reading, both verdicts, thresholds, newest readings, history (read once)."""
    events = q.events_of(history)
    kind = workflow.Kind(found["kind"])
    status = workflow.current(events)
    reading = verdict = None
    if found["reading_id"]:
        reading = get_reading_at(db, found["reading_id"], found["measured_at"])
        verdict = q.verdict_at(db, found["reading_id"], found["measured_at"])
    role = principal.role if principal.role in workflow.ROLES else "none"
    return FailureDetail(**{
        **found,
        "overdue": workflow.is_overdue(status, now, deadlines, found["wholesale"]) if found["due_at"] else False,
        "objection_deadline": workflow.objection_deadline(status, deadlines),
        "allowed_actions": workflow.allowed_actions(kind, events, role, now, deadlines),
        "reading": reading,
        "verdict": verdict,
        "thresholds_used": (verdict or {}).get("thresholds") or found["details"].get("thresholds"),
        "readings": q.newest_readings(db, found["failure_id"]),
        "history": history,
    })


@router.get("/{failure_id}", response_model=FailureDetail)
def failure(failure_id: UUID, db: Db, principal: Staff, clock: ClockDep, settings: SettingsDep) -> FailureDetail:
    """One failure with its reading, both verdicts, the thresholds used, for a per-cause failure its count,
    first and last seen and newest readings, its history and certificate number."""
    found = _found(db, failure_id, principal)
    return _detail(db, found, principal, clock(), deadlines_from(settings), q.history(db, found["failure_id"]))


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=64, description="e.g. object, destroy, lab_positive, close")
    note: str | None = Field(None, max_length=4000)
    evidence: dict[str, str] = Field(
        default_factory=dict, description="photo_ref, lab_report_no, retest_reading_id, report_ref, ..."
    )


def _retest(
    db: Db, found: dict[str, Any], event: workflow.Event, principal: Principal, window: timedelta
) -> workflow.Event:
    """The retest names a real reading of the same sample; its server verdict decides where the failure goes."""
    try:
        retest_id = UUID(str(event.evidence.get("retest_reading_id")))
    except ValueError:
        raise workflow.RetestRefused("retest_reading_id is not a reading id (a UUID)", (),
                                     {"reason": "not_a_reading_id"}) from None
    first = workflow.SampleFacts(
        str(found["reading_id"]), found["measured_at"], found["market_id"], found["analyte"], found["commodity"],
        found["sample_id"],
    ) if found["reading_id"] else None
    if first is None:
        raise workflow.RetestRefused("this failure names no reading to retest", (), {"reason": "no_reading"})
    got = get_reading(db, retest_id, principal.market_filter(), include_raw=False)
    retest = workflow.SampleFacts(
        str(got["reading_id"]), got["measured_at"], got["market_id"], got["analyte"], got["commodity"],
        got["sample_id"], got["server_result"],
    ) if got else None
    target = workflow.retest_target(first, retest, window)
    evidence = {**event.evidence, "retest_server_result": retest.server_result if retest else None}
    return replace(event, to_state=target, evidence=evidence)


@router.post("/{failure_id}/actions", response_model=FailureDetail)
def act(
    failure_id: UUID,
    body: ActionRequest,
    db: Db,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require_role("operator", "regulator"))],
) -> FailureDetail:
    """Move a failure through its workflow; 409 names the actions allowed now."""
    found = _found(db, failure_id, principal, lock=True)
    now = clock()
    deadlines = deadlines_from(settings)
    history = q.history(db, found["failure_id"])
    events = q.events_of(history)
    kind = workflow.Kind(found["kind"])
    evidence: dict[str, Any] = {**body.evidence, "note": body.note}
    try:
        event = workflow.decide(kind, events, body.action, principal.name, principal.role, now, evidence, deadlines)
        if event.action == "retest_negative":
            event = _retest(db, found, event, principal, timedelta(hours=settings.retest_window_h))
    except workflow.WorkflowError as exc:
        raise ApiError(exc.status, exc.code, exc.message, {**exc.details, "allowed": exc.allowed}) from None
    status = workflow.current([*events, event])
    market = registry.market_rules(db, found.get("market_id"))
    seq = q.record_action(
        db, found["failure_id"], event, status,
        workflow.due_at(status, deadlines, found.get("wholesale", False), market),
        workflow.outcome([*events, event]),
    )
    record_audit(
        db,
        principal.name,
        "failure.action",
        f"failure:{found['failure_id']}",
        {"action": body.action, "seq": seq, "from_state": found["state"], "to_state": status.state.value},
    )
    db.commit()
    after = {**found, "state": status.state.value, "state_since": status.since,
             "due_at": workflow.due_at(status, deadlines, found.get("wholesale", False), market),
             "closed_at": status.since if status.closed else None, "outcome": workflow.outcome([*events, event])}
    appended = {"seq": seq, "action": event.action, "from_state": event.from_state.value if event.from_state else None,
                "to_state": event.to_state.value, "actor": event.actor, "role": event.role, "at": event.at,
                "note": event.note, "evidence": event.evidence}
    return _detail(db, after, principal, now, deadlines, [*history, appended])
