"""Rendering and response headers of the public pages.

A minimal Jinja2 environment of its own (autoescape on for every template), until the console's
shared one (``api/web/templating.py``) takes over.  Every page answer carries the
Content-Security-Policy below: scripts and styles from this origin only, no inline script, no
frames, no form posts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def cache_headers(max_age_s: int) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={max_age_s}", **SECURITY_HEADERS}


def page(template: str, status: int = 200, max_age_s: int = 5, **context: Any) -> HTMLResponse:
    html = _ENV.get_template(template).render(**context)
    headers = cache_headers(max_age_s) if status == 200 else {"Cache-Control": "no-store", **SECURITY_HEADERS}
    return HTMLResponse(html, status_code=status, headers=headers)


def not_found(what: str) -> HTMLResponse:
    return page("not_found.html", status=404, what=what)
