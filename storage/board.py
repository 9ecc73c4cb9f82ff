"""SQL for the public market results board (检测结果公示): one market's tests, counts and failures of a day.

Only what a public screen may show is selected: no operator, device, vendor name or phone; the
vendor id is read only to derive a stall number from it (``api/web/public/present.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.workflow import SCREEN_KIND_VALUES
from storage.db import Connection


@dataclass(frozen=True)
class BoardTest:
    reading_id: str
    measured_at: datetime
    commodity: str
    analyte: str
    vendor_id: str | None
    server_result: str | None  # None: not judged yet


@dataclass(frozen=True)
class BoardCounts:
    tests: int
    negative: int
    invalid: int
    positive: int
    suspicious: int


@dataclass(frozen=True)
class BoardFailure:
    failure_id: str
    kind: str
    commodity: str | None
    analyte: str | None
    vendor_id: str | None
    state: str
    raised_at: datetime
    measured_at: datetime | None


def tests_between(conn: Connection, market_id: str, since: datetime, until: datetime, limit: int) -> list[BoardTest]:
    """The newest tests of a market measured in ``[since, until)``, with the server's verdict when judged."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT r.reading_id::text, r.measured_at, r.commodity, r.analyte, r.vendor_id, v.server_result
               FROM readings r
               LEFT JOIN verdicts v ON v.reading_id = r.reading_id AND v.measured_at = r.measured_at
               WHERE r.market_id = %s AND r.measured_at >= %s AND r.measured_at < %s
               ORDER BY r.measured_at DESC, r.reading_id DESC LIMIT %s""",
            (market_id, since, until, limit),
        )
        return [BoardTest(*row) for row in cur.fetchall()]


def counts_between(conn: Connection, market_id: str, since: datetime, until: datetime) -> BoardCounts:
    """Judged tests by verdict (the hourly pass-rate relation: rollup table or continuous aggregate).

    ``since`` and ``until`` are hour starts (a market's day in a whole-hour time zone)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT coalesce(sum(n_tests), 0), coalesce(sum(n_negative), 0), coalesce(sum(n_invalid), 0),
                      coalesce(sum(n_positive), 0), coalesce(sum(n_suspicious), 0)
               FROM pass_rate_market_hourly WHERE market_id = %s AND bucket >= %s AND bucket < %s""",
            (market_id, since, until),
        )
        row = cur.fetchone()
    assert row is not None
    return BoardCounts(*(int(v) for v in row))


def screen_failures(conn: Connection, market_id: str, since: datetime, open_since: datetime,
                    limit: int) -> list[BoardFailure]:
    """Positive and suspicious screens raised since ``since``, and those raised since ``open_since``
    that are still being handled; newest first."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT failure_id::text, kind, commodity, analyte, vendor_id, state, raised_at, measured_at
               FROM failures
               WHERE market_id = %(market)s AND kind = ANY(%(kinds)s) AND raised_at >= %(open_since)s
                 AND (raised_at >= %(since)s OR closed_at IS NULL)
               ORDER BY raised_at DESC, failure_id DESC LIMIT %(limit)s""",
            {"market": market_id, "kinds": list(SCREEN_KIND_VALUES), "since": since, "open_since": open_since,
             "limit": limit},
        )
        return [BoardFailure(*row) for row in cur.fetchall()]
