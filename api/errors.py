"""JSON errors in the SPEC.md shape: ``{"error": {"code": "...", "message": "..."}}``."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return {"error": err}


def _http_code(status: int) -> str:
    return {
        400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
        406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
        422: "invalid_request", 429: "rate_limited", 503: "unavailable",
    }.get(status, "error" if status >= 500 else "bad_request")


def _jsonable(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors[:20]:
        out.append({"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")),
                    "type": str(err.get("type", ""))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def _refuse_nul(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """A NUL can't reach PostgreSQL text; refuse it before any route sees it."""
        raw = request.scope.get("raw_path", b"") + b"?" + request.scope.get("query_string", b"")
        if b"%00" in raw or b"\x00" in raw:
            return JSONResponse(error_body("bad_request", "NUL characters are not allowed in a URL"), status_code=400)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers: dict[str, str] | None = None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        elif exc.status == 429 and exc.details and "retry_after_s" in exc.details:
            headers = {"Retry-After": str(max(1, math.ceil(float(exc.details["retry_after_s"]))))}
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable(list(exc.errors()))
        summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return JSONResponse(error_body("invalid_request", summary or "invalid request", {"errors": errors}),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(_http_code(exc.status_code), str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in the API")
        return JSONResponse(error_body("internal_error", "the server failed on this request; it was logged"),
                            status_code=500)
