"""Console sessions: a signed, opaque cookie naming a token by its SHA-256, and CSRF tokens.

Logging in with an API token sets ``rt_session`` (HttpOnly, SameSite=Strict, Path=/): a random
session id, the token's SHA-256 (never the token), and an expiry, signed with HMAC-SHA256 under
the console secret (``RT_CONSOLE_SECRET``; unset: a random secret per API process, so sessions
end when the API restarts). Every request re-resolves the token, so a revoked or expired token
ends its sessions at once. Each form carries ``csrf`` = HMAC(secret, session id); the login form,
before any session, a double-submit pair (cookie ``rt_login_csrf`` and the field).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request, Response

from api.auth import LIMITER, principal_of
from api.deps import ANONYMOUS_REGULATOR, Database, Principal
from api.errors import ApiError
from api.web.errors import LoginRequired
from domain.access import hash_token
from schemas.settings import Settings
from storage import console_sessions, tokens

SESSION_COOKIE = "rt_session"
LOGIN_CSRF_COOKIE = "rt_login_csrf"
SESSION_HOURS = 12


@dataclass(frozen=True)
class ConsoleSession:
    principal: Principal
    session_id: str
    csrf: str


def _secret(request: Request) -> bytes:
    state = request.app.state
    secret: bytes | None = getattr(state, "console_secret", None)
    if secret is None:
        settings: Settings = state.settings
        configured = getattr(settings, "console_secret", None)
        value = configured.get_secret_value() if configured is not None else None
        secret = value.encode() if value else secrets.token_bytes(32)
        state.console_secret = secret
    return secret


def _sign(secret: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, payload, hashlib.sha256).digest()).decode().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def csrf_for(secret: bytes, session_id: str) -> str:
    return _sign(secret, b"csrf:" + session_id.encode())


def issue_cookie(request: Request, response: Response, bearer_token: str) -> None:
    secret = _secret(request)
    payload = json.dumps({"sid": secrets.token_urlsafe(16), "h": hash_token(bearer_token).hex(),
                          "exp": int(time.time()) + SESSION_HOURS * 3600}, separators=(",", ":")).encode()
    value = f"{_b64(payload)}.{_sign(secret, payload)}"
    response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


def end_session(request: Request) -> None:
    """Logging out: the session ends on the server too, so a copy of its cookie no longer logs in."""
    data = _payload(request)
    expires = data.get("exp") if data is not None else None
    if data is None or not isinstance(expires, int):
        return
    database: Database = request.app.state.database
    conn = database.getconn()
    try:
        console_sessions.end_session(conn, str(data["sid"]), datetime.fromtimestamp(expires, UTC))
    finally:
        database.putconn(conn)


def clear_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def _payload(request: Request) -> dict[str, object] | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or "." not in raw or len(raw) > 1000:
        return None
    body, _, signature = raw.partition(".")
    try:
        payload = _unb64(body)
    except ValueError:
        return None
    if not hmac.compare_digest(_sign(_secret(request), payload), signature):
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("exp"), int) or data["exp"] < time.time():
        return None
    return data


def current_session(request: Request) -> ConsoleSession:
    """The session of this request, or :class:`LoginRequired`; also set on ``request.state`` for templates."""
    found: ConsoleSession | None = getattr(request.state, "console_session", None)
    if found is not None:
        return found
    settings: Settings = request.app.state.settings
    secret = _secret(request)
    data = _payload(request)
    if not settings.api_auth:
        sid = str(data["sid"]) if data else "anonymous"
        found = ConsoleSession(ANONYMOUS_REGULATOR, sid, csrf_for(secret, sid))
    else:
        if data is None or not isinstance(data.get("h"), str):
            raise LoginRequired
        database: Database = request.app.state.database
        conn = database.getconn()
        try:
            record = tokens.find_active(conn, bytes.fromhex(str(data["h"])))
            ended = record is not None and console_sessions.is_ended(conn, str(data["sid"]))
            conn.rollback()
        finally:
            database.putconn(conn)
        if record is None or ended:
            raise LoginRequired
        wait = LIMITER.acquire(record.token_id, record.rate_per_minute)
        if wait > 0:
            raise ApiError(429, "rate_limited", f"this token is limited to {record.rate_per_minute} requests a minute")
        sid = str(data["sid"])
        found = ConsoleSession(principal_of(record), sid, csrf_for(secret, sid))
    request.state.console_session = found
    request.state.csrf_token = found.csrf
    return found


def check_csrf(request: Request, session: ConsoleSession, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, session.csrf):
        raise ApiError(403, "csrf", "the form's CSRF token is missing or wrong; reload the page and try again")


def login_csrf_value(request: Request) -> str:
    """The login form's CSRF value (reusing the cookie's if the browser has one)."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not value or len(value) > 100:
        value = secrets.token_urlsafe(24)
    return value


def set_login_csrf(response: Response, value: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, value, max_age=3600, httponly=True, samesite="strict", path="/console/")


def check_login_csrf(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise ApiError(403, "csrf", "the login form expired; reload the page and try again")
