"""Public pages, no login: ``/board/{market_id}`` (the TV at the market gate, 1920×1080),
``/board/{market_id}/data.json`` (what its script polls every few seconds), ``/c/{certificate_no}``
(the page a 合格证's QR code points to) and ``/c/{no}/qr.svg`` / ``qr.png`` (the code to print).

Every answer is cacheable for a few seconds, rate-limited per client address, and unknown ids get
a 404 page.  Values a device or submitter sent reach the page only through Jinja autoescape (HTML)
or the script's text nodes (JSON).
"""

from __future__ import annotations

import io
from typing import Annotated
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from api.deps import ClockDep, Db, SettingsDep
from api.errors import error_body
from api.web.public import views
from api.web.public.limits import AddressLimiter
from api.web.public.pages import NO_STORE, STATIC_DIR, cache_headers, not_found, page
from domain.registry_rules import DEFAULT_TIME_ZONE
from schemas.common import ID_RE
from schemas.settings import Settings
from storage import chain_reads, registry

router = APIRouter(tags=["public pages"], include_in_schema=False)

BOARD_MAX_AGE_S = 2
CERTIFICATE_MAX_AGE_S = 10
QR_MAX_AGE_S = 86_400
POLL_MS = 2000
STATIC_FILES = {"board.js": "text/javascript", "board.css": "text/css", "certificate.css": "text/css"}


def _limiter(request: Request, settings: Settings) -> AddressLimiter:
    state = request.app.state
    limiter: AddressLimiter | None = getattr(state, "public_limiter", None)
    if limiter is None:
        limiter = state.public_limiter = AddressLimiter(settings.public_rate_per_minute)
    return limiter


def limited(request: Request, settings: SettingsDep) -> Response | None:
    """A 429 answer when this client address is over its rate, else None."""
    address = request.client.host if request.client else "-"
    wait = _limiter(request, settings).acquire(address)
    if wait <= 0:
        return None
    retry = str(max(1, round(wait + 0.5)))
    if request.url.path.endswith(".json"):
        return JSONResponse(error_body("rate_limited", f"too many requests from your address; retry in {retry}s"),
                            status_code=429, headers={"Retry-After": retry})
    answer = page(request, "rate_limited.html", status=429, retry=retry)
    answer.headers["Retry-After"] = retry
    return answer


Limited = Annotated[Response | None, Depends(limited)]


def _market(db: Db, market_id: str) -> registry.Market | None:
    return registry.get_market(db, market_id) if ID_RE.fullmatch(market_id) else None


@router.get("/board/{market_id}")
def board_page(market_id: str, request: Request, db: Db, clock: ClockDep, refused: Limited) -> Response:
    """The market results board (检测结果公示), full screen; its script refreshes it from data.json."""
    if refused is not None:
        return refused
    market = _market(db, market_id)
    if market is None:
        return not_found(request, "市场")
    data = views.board_data(db, market, clock())
    return page(request, "board.html", max_age_s=BOARD_MAX_AGE_S, board=data, poll_ms=POLL_MS)


@router.get("/board/{market_id}/data.json", response_model=views.BoardData)
def board_json(market_id: str, db: Db, clock: ClockDep, refused: Limited) -> Response:
    """The board's content as JSON (polled by the board every few seconds)."""
    if refused is not None:
        return refused
    market = _market(db, market_id)
    if market is None:
        return JSONResponse(error_body("not_found", f"no market {market_id[:64]}"), status_code=404,
                            headers=NO_STORE)
    data = views.board_data(db, market, clock())
    return Response(data.model_dump_json(), media_type="application/json",
                    headers=cache_headers(BOARD_MAX_AGE_S))


@router.get("/c/{certificate_no}")
def certificate_page(certificate_no: str, request: Request, db: Db, refused: Limited) -> Response:
    """What the QR code on a 合格证 opens: the lot, its producer, its tests, whether the chain verifies."""
    if refused is not None:
        return refused
    view = views.certificate_view(db, certificate_no, ZoneInfo(DEFAULT_TIME_ZONE)) \
        if ID_RE.fullmatch(certificate_no) else None
    if view is None:
        return not_found(request, "合格证")
    return page(request, "certificate.html", max_age_s=CERTIFICATE_MAX_AGE_S, c=view)


def _qr(request: Request, settings: Settings, db: Db, certificate_no: str) -> segno.QRCode | None:
    if not ID_RE.fullmatch(certificate_no):
        return None
    if chain_reads.record(db, certificate_no) is None and chain_reads.held(db, certificate_no) is None:
        return None
    base = (settings.public_base_url or str(request.base_url)).rstrip("/")
    return segno.make(f"{base}/c/{certificate_no}", error="m")


def _qr_answer(request: Request, settings: Settings, db: Db, certificate_no: str, refused: Response | None,
               kind: str, media_type: str) -> Response:
    if refused is not None:
        return refused
    qr = _qr(request, settings, db, certificate_no)
    if qr is None:
        return not_found(request, "合格证")
    out = io.BytesIO()
    extra = {"xmldecl": False, "title": f"合格证 {certificate_no}"} if kind == "svg" else {}
    qr.save(out, kind=kind, scale=8, border=4, **extra)
    return Response(out.getvalue(), media_type=media_type, headers=cache_headers(QR_MAX_AGE_S))


@router.get("/c/{certificate_no}/qr.svg")
def certificate_qr_svg(certificate_no: str, request: Request, settings: SettingsDep, db: Db,
                       refused: Limited) -> Response:
    """The certificate page's QR code, as SVG for printing."""
    return _qr_answer(request, settings, db, certificate_no, refused, "svg", "image/svg+xml")


@router.get("/c/{certificate_no}/qr.png")
def certificate_qr_png(certificate_no: str, request: Request, settings: SettingsDep, db: Db,
                       refused: Limited) -> Response:
    """The certificate page's QR code, as PNG."""
    return _qr_answer(request, settings, db, certificate_no, refused, "png", "image/png")


@router.get("/public/static/{name}")
def static_file(name: str, request: Request) -> Response:
    """The boards' script and style sheets (no inline script or style: the CSP forbids them)."""
    if name not in STATIC_FILES:
        return not_found(request, "文件")
    return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name], headers=cache_headers(300))
