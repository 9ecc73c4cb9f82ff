"""Jinja2 templates with autoescape and one message catalogue per language (zh-CN default, English).

Every label goes through ``t(<key>)``; the catalogues are ``api/web/i18n/<lang>.json`` (flat
key → text, ``{name}`` placeholders). Template names are paths under ``api/web/``:
``templates/base.html``, ``console/templates/today.html``, ``public/templates/board.html``.
The language comes from ``?lang=`` or the ``rt_lang`` cookie (set by ``GET /lang``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from domain import analytes

WEB_DIR = Path(__file__).resolve().parent
LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
LANG_COOKIE = "rt_lang"
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")


@cache
def catalogue(lang: str) -> dict[str, str]:
    path = WEB_DIR / "i18n" / f"{lang.replace('-', '_')}.json"
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def translate(lang: str, key: str, **values: Any) -> str:
    """The label for ``key`` in ``lang``; falls back to zh-CN, then to the key itself (visible, never a crash)."""
    text = catalogue(lang).get(key) or catalogue(DEFAULT_LANG).get(key) or key
    if values:
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def analyte_name(lang: str, code: str | None) -> str:
    """A test item as the page's reader knows it: 毒死蜱 in Chinese, the code in English."""
    if not code:
        return ""
    known = analytes.get(code)
    return known.name_zh if known is not None and lang == DEFAULT_LANG else code


def language_of(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or DEFAULT_LANG
    return asked if asked in LANGS else DEFAULT_LANG


def _local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(DISPLAY_TZ).strftime(fmt)


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}" if digits else f"{int(value):,}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(WEB_DIR)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
ENV.filters.update(local=_local, pct=_pct, num=_num, duration=_duration, iso=_iso)
ENV.globals["analyte_name"] = jinja2.pass_context(
    lambda ctx, code: analyte_name(ctx.get("lang") or DEFAULT_LANG, code))
ENV.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}


def render(request: Request, name: str, context: Mapping[str, Any] | None = None, *, status: int = 200,
           headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """Render ``name`` with the request's language, CSP nonce and whatever ``context`` adds."""
    lang = language_of(request)
    base: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "other_lang": "en" if lang == "zh-CN" else "zh-CN",
        "t": lambda key, **kw: translate(lang, key, **kw),
        "nonce": getattr(request.state, "csp_nonce", ""),
        "session": getattr(request.state, "console_session", None),
        "csrf": getattr(request.state, "csrf_token", ""),
    }
    if context:
        base.update(context)
    html = ENV.get_template(name).render(base)
    response = HTMLResponse(html, status_code=status, headers=dict(headers) if headers else None)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, language_of(request), max_age=365 * 86400, samesite="strict", httponly=True)
    return response
