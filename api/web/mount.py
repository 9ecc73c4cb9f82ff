"""Wire the HTML side into the app: security headers, ``/static/``, error pages, the language switch, routers."""

from __future__ import annotations

import importlib
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.web.errors import install_html_errors
from api.web.security import SecurityHeaders
from api.web.templating import LANG_COOKIE, LANGS, WEB_DIR
from api.web.urls import safe_next

#: Modules with a ``router`` of HTML pages (add yours here).
WEB_ROUTERS: tuple[str, ...] = ("api.web.console.routes", "api.web.public.routes")

lang_router = APIRouter(include_in_schema=False)


@lang_router.get("/lang")
def switch_language(to: Annotated[str, Query(max_length=10)] = "zh-CN",
                    next: Annotated[str | None, Query(max_length=2000)] = None) -> RedirectResponse:
    response = RedirectResponse(safe_next(next), status_code=303)
    if to in LANGS:
        response.set_cookie(LANG_COOKIE, to, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


def install_web(app: FastAPI) -> None:
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    install_html_errors(app)
    app.include_router(lang_router)
    for name in WEB_ROUTERS:
        app.include_router(importlib.import_module(name).router)
