"""Server-Sent Events for the live failure feed (``GET /v1/failures/stream``).

Each failure event (a new failure, a workflow transition) is one SSE message
whose ``id`` is its ``failure_events.seq``.  Writers append events in commit
order (``storage.verdicts.EVENT_LOCK``), so resuming from
``Last-Event-ID`` replays exactly what a reconnecting dashboard missed.
The feed is polled from the database; no broker or process-local state is
involved, so every API replica serves the same stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.deps import Database
from schemas.common import rfc3339
from storage.db import Connection
from storage.failures import feed_after, latest_seq

POLL_INTERVAL_S = 0.1
KEEPALIVE_S = 15.0
BATCH = 500


def _plain(value: Any) -> Any:
    return rfc3339(value) if isinstance(value, datetime) else value


def format_event(row: dict[str, Any]) -> str:
    """One SSE message: ``failure_raised`` for the opening event, ``failure_changed`` for transitions."""
    kind = "failure_raised" if row["action"] == "raised" else "failure_changed"
    data = {k: _plain(v) for k, v in row.items()}
    return f"id: {row['seq']}\nevent: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def parse_last_event_id(value: str | None) -> int | None:
    """A resume point, or None (start with what happens from now on)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    return int(text) if text.isdigit() else None


@dataclass
class FeedOptions:
    markets: list[str] | None
    after: int | None
    max_events: int | None = None
    timeout_s: float | None = None
    #: Adds display fields to a batch of rows before they are sent, on the batch's connection (the console's
    #: stream: each failure's summary in the page's language); None sends the rows as stored (the API's stream).
    present: Callable[[Connection, list[dict[str, Any]]], None] | None = None


def _feed(conn: Connection, after: int, options: FeedOptions) -> list[dict[str, Any]]:
    rows = feed_after(conn, after, options.markets, BATCH)
    if rows and options.present is not None:
        options.present(conn, rows)
    return rows


def _with_conn(database: Database, fn: Callable[..., Any], *args: Any) -> Any:
    conn = database.getconn()
    try:
        return fn(conn, *args)
    finally:
        database.putconn(conn)


async def stream(request: Request, database: Database, options: FeedOptions) -> AsyncIterator[str]:
    """Yield SSE messages until the client leaves, ``max_events`` were sent or ``timeout_s`` passed."""
    after = options.after
    if after is None:
        after = await run_in_threadpool(_with_conn, database, latest_seq)
    yield "retry: 2000\n\n"
    sent = 0
    started = anyio.current_time()
    quiet_since = started
    while True:
        if await request.is_disconnected():
            return
        rows = await run_in_threadpool(_with_conn, database, _feed, after, options)
        for row in rows:
            yield format_event(row)
            after = row["seq"]
            sent += 1
            if options.max_events is not None and sent >= options.max_events:
                return
        now = anyio.current_time()
        if rows:
            quiet_since = now
            continue
        if options.timeout_s is not None and now - started >= options.timeout_s:
            return
        if now - quiet_since >= KEEPALIVE_S:
            quiet_since = now
            yield ": keep-alive\n\n"
        await anyio.sleep(POLL_INTERVAL_S)
