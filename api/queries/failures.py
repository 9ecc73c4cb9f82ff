"""SQL for failures: lists, one failure with its reading and history, workflow actions, the event feed.

The API's pool connections have no uuid adapter, so ids travel as text and
are cast in SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.queries.filters import scoped_where
from consumers import failure_store as store
from domain import workflow
from storage.db import Connection

FAILURE_FIELDS = (
    "failure_id",
    "kind",
    "workflow",
    "state",
    "state_since",
    "due_at",
    "closed_at",
    "raised_at",
    "summary",
    "reading_id",
    "measured_at",
    "market_id",
    "station_id",
    "device_id",
    "analyte",
    "commodity",
    "commodity_category",
    "region_code",
    "strip_lot",
    "sample_id",
    "vendor_id",
    "certificate_no",
    "lot_code",
    "subject",
    "parent_failure_id",
    "wholesale",
)


@dataclass(frozen=True)
class FailureFilter:
    markets: list[str] | None = None
    market_id: str | None = None
    station_id: str | None = None
    device_id: str | None = None
    analyte: str | None = None
    commodity: str | None = None
    strip_lot: str | None = None
    kinds: list[str] | None = None
    states: list[str] | None = None
    open_only: bool = False
    overdue_at: datetime | None = None  # overdue=true: open and due before this instant
    since: datetime | None = None
    until: datetime | None = None


def _where(f: FailureFilter) -> tuple[list[str], list[Any]]:
    columns = ("market_id", "station_id", "device_id", "analyte", "commodity", "strip_lot")
    clauses, params = scoped_where(f.markets, {c: getattr(f, c) for c in columns}, "raised_at", f.since, f.until)
    for column, values in (("kind", f.kinds), ("state", f.states)):
        if values:
            clauses.append(f"{column} = ANY(%s)")
            params.append(values)
    if f.open_only:
        clauses.append("closed_at IS NULL")
    if f.overdue_at is not None:
        clauses.append("closed_at IS NULL AND due_at < %s")
        params.append(f.overdue_at)
    return clauses, params


def _dicts(cur: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _text_ids(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("failure_id", "reading_id", "parent_failure_id"):
        if row.get(key) is not None:
            row[key] = str(row[key])
    return row


def list_failures(
    conn: Connection, f: FailureFilter, limit: int, after: tuple[datetime, str] | None
) -> list[dict[str, Any]]:
    clauses, params = _where(f)
    if after is not None:
        clauses.append("(raised_at, failure_id) < (%s, %s::uuid)")
        params.extend(after)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    query = (
        f"SELECT {', '.join(FAILURE_FIELDS)} FROM failures {where} ORDER BY raised_at DESC, failure_id DESC LIMIT %s"
    )
    with conn.cursor() as cur:
        cur.execute(query, [*params, limit])
        return [_text_ids(r) for r in _dicts(cur)]


def get_failure(
    conn: Connection, failure_id: uuid.UUID, markets: list[str] | None, lock: bool = False
) -> dict[str, Any] | None:
    """One failure inside the principal's markets (a failure with no market is regulator-only)."""
    query = f"SELECT {', '.join(FAILURE_FIELDS)}, details FROM failures WHERE failure_id = %s::uuid"
    params: list[Any] = [str(failure_id)]
    if markets is not None:
        query += " AND market_id = ANY(%s)"
        params.append(markets)
    with conn.cursor() as cur:
        cur.execute(query + (" FOR UPDATE" if lock else ""), params)
        found = _dicts(cur)
    return _text_ids(found[0]) if found else None


def reading_and_verdict(
    conn: Connection, reading_id: str, measured_at: Any
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The stored reading (if the store consumer has written it) and the server verdict.

    ``measured_at`` is part of both keys: on TimescaleDB it prunes the lookup to one chunk."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT reading_id, measured_at, received_at, market_id, station_id, device_id, sample_id, commodity, "
            "commodity_category, vendor_id, certificate_no, lot_code, analyte, method, method_standard, strip_lot, "
            "cutoff_ratio, c_line, t_line, inhibition_pct, device_result, operator_id, firmware, raw "
            "FROM readings WHERE reading_id = %s::uuid AND measured_at = %s",
            (reading_id, measured_at),
        )
        readings = _dicts(cur)
        cur.execute(
            "SELECT v.device_result, v.server_result, v.rule, v.reason, v.ratio, v.concentration, v.device_cutoff, "
            "v.verdict_mismatch, v.cutoff_mismatch, v.thresholds_digest, s.thresholds, v.judged_at "
            "FROM verdicts v LEFT JOIN threshold_snapshots s ON s.digest = v.thresholds_digest "
            "WHERE v.reading_id = %s::uuid AND v.measured_at = %s",
            (reading_id, measured_at),
        )
        verdicts = _dicts(cur)
    reading = _text_ids(readings[0]) if readings else None
    return reading, (verdicts[0] if verdicts else None)


def history(conn: Connection, failure_id: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT seq, action, from_state, to_state, actor, role, at, note, evidence FROM failure_events "
            "WHERE failure_id = %s::uuid ORDER BY seq",
            (failure_id,),
        )
        return _dicts(cur)


def load_events(conn: Connection, failure_id: str) -> list[workflow.Event]:
    return [
        workflow.Event(
            r["action"],
            workflow.State(r["from_state"]) if r["from_state"] else None,
            workflow.State(r["to_state"]),
            r["actor"],
            r["role"],
            r["at"],
            r["note"],
            r["evidence"] or {},
        )
        for r in history(conn, failure_id)
    ]


def record_action(
    conn: Connection, failure_id: str, event: workflow.Event, status: workflow.Status, due: datetime | None
) -> int:
    """Append the event and refresh the cached state, in the open transaction; returns the event's seq."""
    fid = uuid.UUID(failure_id)
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE failures SET state = %s, state_since = %s, due_at = %s, closed_at = %s WHERE failure_id = %s::uuid",
            (status.state.value, status.since, due, status.since if status.closed else None, failure_id),
        )
    return store.append_events(conn, [(fid, event)])[0]


# --- the live feed (SSE) ---

FEED_FIELDS = (
    "e.seq",
    "e.failure_id",
    "e.action",
    "e.from_state",
    "e.to_state",
    "e.actor",
    "e.role",
    "e.at",
    "e.note",
    "f.kind",
    "f.summary",
    "f.market_id",
    "f.station_id",
    "f.device_id",
    "f.analyte",
    "f.commodity",
    "f.strip_lot",
    "f.reading_id",
    "f.raised_at",
    "f.state",
    "f.due_at",
)


def feed_after(conn: Connection, after_seq: int, markets: list[str] | None, limit: int) -> list[dict[str, Any]]:
    """Failure events with ``seq > after_seq`` inside the principal's markets, oldest first."""
    query = f"SELECT {', '.join(FEED_FIELDS)} FROM failure_events e JOIN failures f USING (failure_id) WHERE e.seq > %s"
    params: list[Any] = [after_seq]
    if markets is not None:
        query += " AND f.market_id = ANY(%s)"
        params.append(markets)
    with conn.cursor() as cur:
        cur.execute(query + " ORDER BY e.seq LIMIT %s", [*params, limit])
        return [_text_ids(r) for r in _dicts(cur)]


def latest_seq(conn: Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(seq), 0) FROM failure_events")
        found = cur.fetchone()
    return int(found[0]) if found else 0
