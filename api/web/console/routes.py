"""The console's HTTP routes: log in and out; the pages are in the modules this router includes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import LIMITER
from api.deps import Database
from api.web.console import district, district_admin, failure, live, public_links, today, trace
from api.web.console import session as sess
from api.web.console.forms import form_fields
from api.web.templating import render
from api.web.urls import safe_next
from domain.access import TOKEN_PREFIX, hash_token
from storage import tokens

router = APIRouter(prefix="/console", include_in_schema=False)


def _login_page(request: Request, next_path: str, error: str | None = None, status: int = 200) -> Response:
    csrf = sess.login_csrf_value(request)
    response = render(request, "console/templates/login.html", {"next": next_path, "error": error,
                                                                 "login_csrf": csrf}, status=status)
    sess.set_login_csrf(response, csrf)
    return response


@router.get("/login")
def login_form(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    return _login_page(request, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form_fields(request)
    sess.check_login_csrf(request, fields.get("csrf"))
    token = fields.get("token", "")
    next_path = safe_next(fields.get("next"))
    record = None
    if token.startswith(TOKEN_PREFIX) and len(token) <= 200:
        database: Database = request.app.state.database
        conn = database.getconn()
        try:
            record = tokens.find_active(conn, hash_token(token))
        finally:
            database.putconn(conn)
    if record is None or record.role not in ("operator", "regulator"):
        key = "login.bad_token" if record is None else "login.wrong_role"
        return _login_page(request, next_path, key, status=401 if record is None else 403)
    LIMITER.acquire(record.token_id, record.rate_per_minute)
    response = RedirectResponse(next_path, status_code=303)
    sess.issue_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    fields = await form_fields(request)
    session = sess.current_session(request)
    sess.check_csrf(request, session, fields.get("csrf"))
    if request.app.state.settings.api_auth:
        sess.end_session(request)
    response = RedirectResponse("/console/login", status_code=303)
    sess.clear_cookie(response)
    return response


for _module in (today, live, failure, district, district_admin, trace, public_links):
    router.include_router(_module.router)
