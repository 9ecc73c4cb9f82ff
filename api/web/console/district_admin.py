"""The regulator's threshold registry (versions and a form to add one) and the dead letters."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import ClockDep, Db
from api.errors import ApiError
from api.routes import deadletters as deadletter_api
from api.routes import thresholds as threshold_api
from api.web.console.deps import RegulatorSession
from api.web.console.forms import form_fields
from api.web.console.session import check_csrf
from api.web.templating import DISPLAY_TZ, language_of, render, translate

router = APIRouter(prefix="/district")
PAGE = 100
EXAMPLE_PARAMS = {"mode": "ratio", "c_min": 100.0, "r_pos": 0.8, "r_neg": 0.95}


def _thresholds_page(request: Request, session: RegulatorSession, db: Db, *, error: str | None = None,
                     status: int = 200, form: dict[str, str] | None = None) -> Response:
    settings = request.app.state.settings
    page = threshold_api.thresholds(db, session.principal, settings, limit=PAGE)
    context = {"section": "district", "versions": page.items, "error": error,
               "form": form or {"scope": "strip_lot", "params": json.dumps(EXAMPLE_PARAMS)}}
    return render(request, "console/templates/thresholds.html", context, status=status)


@router.get("/thresholds")
def thresholds_page(request: Request, session: RegulatorSession, db: Db) -> Response:
    return _thresholds_page(request, session, db)


@router.post("/thresholds")
async def add_threshold(request: Request, session: RegulatorSession, db: Db, clock: ClockDep) -> Response:
    fields = await form_fields(request)
    check_csrf(request, session, fields.pop("csrf", None))
    lang = language_of(request)
    try:
        params = json.loads(fields.get("params") or "")
        if not isinstance(params, dict):
            raise ValueError
    except ValueError:
        return _thresholds_page(request, session, db, error=translate(lang, "thresholds.bad_json"), status=422,
                                form=fields)
    valid_from: datetime | None = None
    if fields.get("valid_from"):
        try:
            valid_from = datetime.fromisoformat(fields["valid_from"]).replace(tzinfo=DISPLAY_TZ)
        except ValueError:
            return _thresholds_page(request, session, db, error=translate(lang, "thresholds.bad_time"), status=422,
                                    form=fields)
    scope = fields.get("scope", "")
    try:
        body = threshold_api.ThresholdVersion(
            scope=scope, analyte=fields.get("analyte") or None if scope != "project" else None,
            strip_lot=fields.get("strip_lot") or None if scope == "strip_lot" else None,
            valid_from=valid_from, params=params, note=fields.get("note") or None)
        added = threshold_api.add_threshold_version(body, db, clock, session.principal)
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]) for e in exc.errors()[:3])
        return _thresholds_page(request, session, db, error=message, status=422, form=fields)
    except ApiError as exc:
        db.rollback()
        return _thresholds_page(request, session, db, error=exc.message, status=exc.status, form=fields)
    return RedirectResponse(f"/console/district/thresholds?added={added.id}", status_code=303)


@router.get("/deadletters")
def deadletters_page(request: Request, session: RegulatorSession, db: Db,
                     code: Annotated[str | None, Query(max_length=64)] = None,
                     cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    settings = request.app.state.settings
    page = deadletter_api.deadletters(db, settings, session.principal, code=code or None, limit=PAGE, cursor=cursor)
    items: list[dict[str, Any]] = [d.model_dump() for d in page.items]
    return render(request, "console/templates/deadletters.html",
                  {"section": "district", "items": items, "next_cursor": page.next_cursor, "code": code or ""})
