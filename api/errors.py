"""JSON errors in the SPEC.md shape: ``{"error": {"code": "...", "message": "..."}}``.

Every error of the project's tree (``schemas/errors.py``) that reaches a route's edge is
answered here: :class:`ApiError` with its own status; a retriable ``Unavailable`` 503 with
``Retry-After``; ``InvalidInput`` 422; ``Conflict`` 409 (a workflow refusal its own status);
``AccessDenied`` 403; anything else 500, logged. :class:`ErrorBody` is the OpenAPI model.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.errors import AccessDenied, Conflict, InvalidInput, RapidtraceError, Unavailable

log = logging.getLogger(__name__)


class ApiError(RapidtraceError):
    """An HTTP answer: status, machine-readable code, a message for people, optional details."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retriable = status in (429, 503)


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. not_found, invalid_request, bad_cursor")
    message: str = Field(description="what went wrong, for people")
    details: dict[str, Any] | None = Field(None, description="more, where the code has it (e.g. the failing fields)")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the API."""

    error: ErrorDetail


#: The (status, code) of an error of the tree; the first matching class wins.
_TREE_STATUS: tuple[tuple[type[RapidtraceError], int, str], ...] = (
    (Unavailable, 503, "unavailable"),
    (InvalidInput, 422, "invalid_request"),
    (AccessDenied, 403, "forbidden"),
    (Conflict, 409, "conflict"),
)


def as_api_error(exc: RapidtraceError) -> ApiError:
    """The HTTP answer to an error of the tree; a 500 says only that it was logged."""
    if isinstance(exc, ApiError):
        return exc
    status, code = answer_of(exc)
    if status >= 500 and not exc.retriable:
        log.error("unhandled %s in the API", type(exc).__name__, exc_info=exc)
        return ApiError(500, code, "the server failed on this request; it was logged")
    details = getattr(exc, "details", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return ApiError(status, code, str(message), details if isinstance(details, dict) and details else None)


def answer_of(exc: RapidtraceError) -> tuple[int, str]:
    """The HTTP status and error code for an error of the tree (500 ``internal_error`` when none fits)."""
    status, code = getattr(exc, "status", None), getattr(exc, "code", None)
    if isinstance(status, int) and isinstance(code, str):  # ApiError, domain.workflow refusals
        return status, code
    for cls, tree_status, tree_code in _TREE_STATUS:
        if isinstance(exc, cls):
            return tree_status, tree_code
    return 500, "internal_error"


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
        elif exc.status == 503:
            headers = {"Retry-After": "1"}
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=headers)

    @app.exception_handler(RapidtraceError)
    async def _tree_error(request: Request, exc: RapidtraceError) -> Response:
        """Answered as the ApiError it amounts to, by whatever handles ApiError then (HTML pages wrap it)."""
        answer = as_api_error(exc)
        handler = app.exception_handlers.get(ApiError, _api_error)
        response = handler(request, answer)
        return await response if inspect.isawaitable(response) else response

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
