"""Links from the console to the public pages: each market's results board, recent certificates' pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import Db
from api.web.console.deps import Session
from api.web.templating import render
from storage import console as console_q
from storage import registry

router = APIRouter()
MARKET_LIMIT = 1000


@router.get("/public")
def public_links(request: Request, session: Session, db: Db) -> Response:
    scope = session.principal.market_filter()
    markets = registry.list_markets(db, limit=MARKET_LIMIT, markets=scope)
    names = registry.region_names(db, {m.region_code[:9] + "000" for m in markets})
    certificates = console_q.recent_certificates(db, scope)
    return render(request, "console/templates/public_links.html",
                  {"section": "public", "markets": markets, "towns": names, "certificates": certificates})
