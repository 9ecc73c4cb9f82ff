"""The console's live failure feed: the API's SSE stream, authenticated by the session cookie.

A browser's EventSource cannot send an ``Authorization`` header, so the console serves the same
stream (``api.events``) under the session, scoped to the session's markets.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import Database
from api.events import FeedOptions, parse_last_event_id, stream
from api.web.console.deps import Session

router = APIRouter()


@router.get("/stream")
async def live_stream(
    request: Request,
    session: Session,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    resume = parse_last_event_id(last_event_id)
    database: Database = request.app.state.database
    options = FeedOptions(session.principal.market_filter(), resume if resume is not None else after)
    return StreamingResponse(stream(request, database, options), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
