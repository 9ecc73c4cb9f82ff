"""Rendering and response headers of the public pages, on the shared Jinja2 environment
(``api/web/templating.py``: autoescape on) and the shared security headers (``api/web/security.py``:
the Content-Security-Policy with scripts and styles from this origin only, no frames).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.web.templating import render

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES = "public/templates/"


def cache_headers(max_age_s: int) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={max_age_s}"}


NO_STORE = {"Cache-Control": "no-store"}


def page(request: Request, template: str, status: int = 200, max_age_s: int = 5, **context: Any) -> HTMLResponse:
    headers = cache_headers(max_age_s) if status == 200 else NO_STORE
    return render(request, TEMPLATES + template, context, status=status, headers=headers)


def not_found(request: Request, what: str) -> HTMLResponse:
    return page(request, "not_found.html", status=404, what=what)
