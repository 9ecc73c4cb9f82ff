"""SQL for reading lists: keyset pagination on (measured_at, reading_id), newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from api.queries.filters import scoped_where
from storage.db import Connection

READING_COLUMNS = (
    "reading_id", "measured_at", "received_at", "stored_at", "market_id", "station_id", "device_id", "sample_id",
    "commodity", "commodity_category", "vendor_id", "certificate_no", "lot_code", "analyte", "method",
    "method_standard", "strip_lot", "cutoff_ratio", "c_line", "t_line", "inhibition_pct", "device_result",
    "operator_id", "firmware",
)


@dataclass(frozen=True)
class ReadingFilter:
    markets: list[str] | None = None  # the principal's scope; None = all
    market_id: str | None = None
    station_id: str | None = None
    device_id: str | None = None
    analyte: str | None = None
    commodity: str | None = None
    device_result: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _where(f: ReadingFilter) -> tuple[list[str], list[Any]]:
    columns = ("market_id", "station_id", "device_id", "analyte", "commodity", "device_result")
    return scoped_where(f.markets, {c: getattr(f, c) for c in columns}, "measured_at", f.since, f.until)


def list_readings(
    conn: Connection, f: ReadingFilter, limit: int, after: tuple[datetime, str] | None, include_raw: bool
) -> list[dict[str, Any]]:
    clauses, params = _where(f)
    if after is not None:
        clauses.append("(measured_at, reading_id) < (%s, %s)")
        params.extend(after)
    columns = ", ".join(READING_COLUMNS + (("raw",) if include_raw else ()))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    query = f"SELECT {columns} FROM readings {where} ORDER BY measured_at DESC, reading_id DESC LIMIT %s"
    with conn.cursor() as cur:
        cur.execute(query, [*params, limit])
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def get_reading(conn: Connection, reading_id: UUID, markets: list[str] | None) -> dict[str, Any] | None:
    columns = ", ".join((*READING_COLUMNS, "raw"))
    query = f"SELECT {columns} FROM readings WHERE reading_id = %s"
    params: list[Any] = [reading_id]
    if markets is not None:
        query += " AND market_id = ANY(%s)"
        params.append(markets)
    with conn.cursor() as cur:
        cur.execute(query + " ORDER BY measured_at DESC LIMIT 1", params)
        found = cur.fetchone()
        if found is None:
            return None
        names = [d[0] for d in cur.description or ()]
        return dict(zip(names, found, strict=True))
