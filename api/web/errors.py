"""HTML error pages (404, 403, 500, ...) for the HTML routes; ``/v1`` keeps its JSON errors.

:func:`install_html_errors` wraps the JSON handlers installed by :mod:`api.errors`: a request whose
path is under one of :data:`HTML_PREFIXES` gets the error page, any other the JSON body as before.
A console page without a session raises :class:`LoginRequired` and is redirected to the login page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import ApiError
from api.web.templating import render
from schemas.errors import AccessDenied

log = logging.getLogger(__name__)

#: Paths served as HTML; their errors are pages. Add a prefix here when mounting new HTML routes.
HTML_PREFIXES = ("/console", "/board", "/c/", "/static/", "/lang")
LOGIN_PATH = "/console/login"

Handler = Callable[[Request, Any], Awaitable[Response]]


class LoginRequired(AccessDenied):
    """No (valid) console session: send the browser to the login page, then back."""


def is_html_path(path: str) -> bool:
    return path == "/c" or path.startswith(HTML_PREFIXES)


def error_page(request: Request, status: int, message: str | None = None) -> Response:
    key = status if status in (400, 403, 404, 405, 409, 422, 429, 500, 503) else (500 if status >= 500 else 400)
    return render(request, "templates/error.html", {"status": status, "key": key, "message": message}, status=status)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)


def _wrap_by_status(app: FastAPI, exc_type: type, fallback: Handler) -> None:
    async def handler(request: Request, exc: Any) -> Response:
        answer = await fallback(request, exc)
        if not is_html_path(request.url.path):
            return answer
        page = error_page(request, answer.status_code)
        if "retry-after" in answer.headers:
            page.headers["Retry-After"] = answer.headers["retry-after"]
        return page

    app.add_exception_handler(exc_type, handler)


def install_html_errors(app: FastAPI) -> None:
    json_handlers: dict[Any, Handler] = dict(app.exception_handlers)

    def wrap(exc_type: type[Exception], html: Callable[[Request, Any], Response]) -> None:
        fallback = json_handlers.get(exc_type)

        async def handler(request: Request, exc: Any) -> Response:
            if is_html_path(request.url.path):
                return html(request, exc)
            assert fallback is not None
            return await fallback(request, exc)

        app.add_exception_handler(exc_type, handler)

    def api_error(request: Request, exc: ApiError) -> Response:
        if exc.status == 401:
            return login_redirect(request)
        return error_page(request, exc.status, exc.message if exc.status < 500 else None)

    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_page(request, exc.status_code)

    def validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        summary = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5])
        return error_page(request, 422, summary)

    def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on an HTML page")
        return error_page(request, 500)

    wrap(ApiError, api_error)
    wrap(StarletteHTTPException, http_error)
    wrap(RequestValidationError, validation)
    wrap(Exception, unexpected)
    for exc_type, fallback in json_handlers.items():  # any other JSON handler: its status, as a page
        if isinstance(exc_type, type) and exc_type not in (ApiError, StarletteHTTPException, RequestValidationError,
                                                           Exception):
            _wrap_by_status(app, exc_type, fallback)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> Response:
        return login_redirect(request)
