"""The console's live failure feed: the API's SSE stream, authenticated by the session cookie.

A browser's EventSource cannot send an ``Authorization`` header, so the console serves the same
stream (``api.events``) under the session, scoped to the session's markets. Each new failure's event also
carries ``summary_text`` and ``analyte_label``, worded on the server in the page's language (``?lang=``, else
the language cookie) exactly as the server-rendered rows are (``labels.with_summaries``), so the live list
shows what a reload would.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import Database
from api.events import FeedOptions, parse_last_event_id, stream
from api.web.console.deps import Session
from api.web.console.labels import with_summaries
from api.web.templating import language_of
from storage.db import Connection

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
    lang = language_of(request)

    def present(conn: Connection, rows: list[dict[str, Any]]) -> None:
        with_summaries(conn, [r for r in rows if r["action"] == "raised"], lang)

    options = FeedOptions(session.principal.market_filter(), resume if resume is not None else after, present=present)
    return StreamingResponse(stream(request, database, options), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
