"""One failure: its reading, both verdicts, thresholds, certificate and lot, history, and the actions allowed now.

Reading and acting go through the API's own handlers (``api.routes.failures``), so the console
sees and does exactly what the token may through the API: another market's failure is a 404,
a refused action carries the workflow's reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import ClockDep, Db, SettingsDep
from api.errors import ApiError
from api.routes import failures as failure_api
from api.web.console.deps import Session
from api.web.console.forms import form_fields
from api.web.console.labels import kind_labels, state_labels, with_summaries
from api.web.console.session import check_csrf
from api.web.failure_text import reason_text
from api.web.templating import language_of, render
from domain import workflow
from storage.db import Connection

router = APIRouter()


def action_forms(kind: str, allowed: list[str]) -> list[dict[str, Any]]:
    """Each allowed action with the evidence fields the workflow requires for it (a note is always offered)."""
    transitions = {tr.action: tr for tr in workflow.TRANSITIONS[workflow.workflow_of(workflow.Kind(kind))]}
    forms = []
    for action in allowed:
        tr = transitions.get(action)
        required = list(tr.evidence) if tr else []
        fields = [{"name": n, "required": True} for n in required if n != "note"]
        forms.append({"action": action, "fields": fields, "note_required": "note" in required})
    return forms


def _page(request: Request, session: Any, db: Connection, detail: dict[str, Any], now: datetime, *,
          error: dict[str, Any] | None = None, status: int = 200, submitted: dict[str, str] | None = None) -> Response:
    lang = language_of(request)
    with_summaries(db, [detail], lang)
    if detail.get("verdict"):
        detail["verdict"]["reason_text"] = reason_text(lang, detail["verdict"])
    deadline = detail.get("objection_deadline")
    context = {
        "section": "today", "f": detail, "now": now, "kind_labels": kind_labels(lang),
        "state_labels": state_labels(lang), "forms": action_forms(detail["kind"], detail["allowed_actions"]),
        "deadline": deadline, "remaining_s": (deadline - now).total_seconds() if deadline else None,
        "error": error, "submitted": submitted or {},
    }
    return render(request, "console/templates/failure.html", context, status=status)


@router.get("/failures/{failure_id}")
def failure_page(failure_id: UUID, request: Request, session: Session, db: Db, clock: ClockDep,
                 settings: SettingsDep) -> Response:
    detail = failure_api.failure(failure_id, db, session.principal, clock, settings).model_dump()
    return _page(request, session, db, detail, clock())


@router.post("/failures/{failure_id}/actions")
async def failure_action(failure_id: UUID, request: Request, session: Session, db: Db, clock: ClockDep,
                         settings: SettingsDep) -> Response:
    fields = await form_fields(request)
    check_csrf(request, session, fields.pop("csrf", None))
    action = fields.pop("action", "")
    note = fields.pop("note", "") or None
    evidence = {k: v for k, v in fields.items() if k in workflow.EVIDENCE_FIELDS and v}
    try:
        try:
            body = failure_api.ActionRequest(action=action or "-", note=note, evidence=evidence)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", "; ".join(e["msg"] for e in exc.errors()[:3])) from None
        failure_api.act(failure_id, body, db, clock, settings, session.principal)
    except ApiError as exc:
        if exc.status == 404:
            raise
        db.rollback()
        detail = failure_api.failure(failure_id, db, session.principal, clock, settings).model_dump()
        error = {"code": exc.code, "message": exc.message, "action": action}
        return _page(request, session, db, detail, clock(), error=error, status=exc.status,
                     submitted={"action": action, "note": note or "", **evidence})
    return RedirectResponse(f"/console/failures/{failure_id}?done={action}", status_code=303)
