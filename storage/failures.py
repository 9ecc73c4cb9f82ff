"""SQL of the failures family: failures, their readings, workflow events, the alert outbox, the feed.

Used by the flagger (raising) and the API (lists, detail, workflow actions,
SSE feed).  Every write runs inside the caller's open transaction.  Raising
is idempotent: a per-strip failure is ``ON CONFLICT (dedup_key) DO NOTHING``;
a per-cause failure is ``ON CONFLICT`` on the open failure of its cause,
adding the batch's count, first/last seen and readings to it (a redelivered
batch reaches neither: its verdicts were not new).  Ids travel as text and
are cast in SQL (the API's pool connections have no uuid adapter).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import execute_values

from domain import workflow
from domain.failures import NEWEST_READINGS, NewFailure
from storage.db import Connection, dict_rows
from storage.where import Where

#: Taken (transaction-scoped) right before inserting failure events, so their
#: ``seq`` order is their commit order and a stream reader never skips one.
EVENT_LOCK = 7520121

#: The failures table's columns, once.
FAILURE_COLUMNS = (
    "failure_id", "dedup_key", "kind", "workflow", "raised_at", "summary", "details", "reading_id", "measured_at",
    "market_id", "station_id", "device_id", "analyte", "commodity", "commodity_category", "region_code",
    "strip_lot", "sample_id", "vendor_id", "certificate_no", "lot_code", "subject", "parent_failure_id",
    "wholesale", "state", "state_since", "due_at", "closed_at", "cause_key", "occurrences", "first_seen",
    "last_seen", "outcome",
)
#: What the API shows of a failure in lists (the detail adds ``details``).
LIST_FIELDS = tuple(c for c in FAILURE_COLUMNS if c not in ("dedup_key", "details"))
EVENT_FIELDS = ("seq", "action", "from_state", "to_state", "actor", "role", "at", "note", "evidence")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _text_ids(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("failure_id", "reading_id", "parent_failure_id"):
        if row.get(key) is not None:
            row[key] = str(row[key])
    return row


# --- raising (the flagger) ---


def _values(f: NewFailure, rules: workflow.Deadlines) -> tuple[Any, ...]:
    status = workflow.current(f.events)
    full = {
        "wholesale": False,
        "occurrences": 1,
        **f.row,
        "cause_key": f.cause_key,
        "state": status.state.value,
        "state_since": status.since,
        "due_at": workflow.due_at(status, rules, f.row.get("wholesale", False)),
        "closed_at": status.since if status.closed else None,
        "outcome": workflow.outcome(f.events),
    }
    full["region_code"] = full.get("region_code") or ""
    full["first_seen"] = full.get("first_seen") or full.get("measured_at") or full["raised_at"]
    full["last_seen"] = full.get("last_seen") or full["first_seen"]
    return tuple(_json(full[c]) if c == "details" else full.get(c) for c in FAILURE_COLUMNS)


_COLS = ", ".join(FAILURE_COLUMNS)


def insert_failures(conn: Connection, failures: Sequence[NewFailure], rules: workflow.Deadlines) -> list[NewFailure]:
    """Raise failures (per-cause ones folded already, one per cause key); returns those newly opened.
    A per-cause failure whose cause is open adds to it instead."""
    if not failures:
        return []
    strips = [f for f in failures if f.cause_key is None]
    causes = [f for f in failures if f.cause_key is not None]
    new_ids: set[uuid.UUID] = set()
    links: list[tuple[uuid.UUID, uuid.UUID, datetime]] = []
    with conn.cursor() as cur:
        if strips:
            returned = execute_values(
                cur,
                f"INSERT INTO failures ({_COLS}) VALUES %s ON CONFLICT (dedup_key) DO NOTHING RETURNING failure_id",
                [_values(f, rules) for f in strips],
                page_size=len(strips),
                fetch=True,
            )
            new_ids |= {uuid.UUID(str(r[0])) for r in returned}
            links += [(f.failure_id, rid, at) for f in strips if f.failure_id in new_ids for rid, at in f.readings]
        for f in sorted(causes, key=lambda c: str(c.cause_key)):  # one order: two flaggers never deadlock
            cur.execute(
                f"INSERT INTO failures AS t ({_COLS}) VALUES %s "
                "ON CONFLICT (cause_key) WHERE closed_at IS NULL AND cause_key IS NOT NULL DO UPDATE SET "
                "occurrences = t.occurrences + EXCLUDED.occurrences, "
                "first_seen = least(t.first_seen, EXCLUDED.first_seen), "
                "last_seen = greatest(t.last_seen, EXCLUDED.last_seen) "
                "RETURNING failure_id, xmax = 0",
                (_values(f, rules),),
            )
            found = cur.fetchone()
            assert found is not None
            fid = uuid.UUID(str(found[0]))
            if found[1]:
                new_ids.add(fid)
            links += [(fid, rid, at) for rid, at in f.readings]
        if links:
            execute_values(
                cur,
                "INSERT INTO failure_readings (failure_id, reading_id, measured_at) VALUES %s "
                "ON CONFLICT DO NOTHING",
                links,
                page_size=len(links),
            )
    return [f for f in failures if f.failure_id in new_ids]


def append_events(conn: Connection, items: Sequence[tuple[uuid.UUID | str, workflow.Event]]) -> list[int]:
    """Append events in order under ``EVENT_LOCK``; returns their seq numbers.

    Call this as the last write of the transaction: the lock is held until commit."""
    if not items:
        return []
    values = [
        (str(fid), e.action, e.from_state.value if e.from_state else None, e.to_state.value, e.actor, e.role,
         e.at, e.note, _json(e.evidence))
        for fid, e in items
    ]
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (EVENT_LOCK,))
        returned = execute_values(
            cur,
            "INSERT INTO failure_events (failure_id, action, from_state, to_state, actor, role, at, note, evidence) "
            "VALUES %s RETURNING seq",
            values,
            template="(%s::uuid, %s, %s, %s, %s, %s, %s, %s, %s)",
            page_size=len(values),
            fetch=True,
        )
    return [int(r[0]) for r in returned]


def open_subjects(conn: Connection, kind: str, subjects: Iterable[str]) -> set[str]:
    """Subjects that already have an open failure of ``kind`` (an episode is raised once)."""
    subjects = list(subjects)
    if not subjects:
        return set()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT subject FROM failures WHERE kind = %s AND closed_at IS NULL AND subject = ANY(%s)", (kind, subjects)
        )
        return {r[0] for r in cur.fetchall()}


def overdue_failures(conn: Connection, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Open failures past their step's deadline (overdue failures themselves excluded)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT failure_id, kind, state, state_since, due_at, market_id, station_id, device_id, analyte, "
            "commodity, region_code, strip_lot, reading_id FROM failures "
            "WHERE closed_at IS NULL AND due_at < %s AND kind <> 'overdue' ORDER BY due_at LIMIT %s",
            (now, limit),
        )
        return dict_rows(cur)


# --- outbox ---


def enqueue_alerts(conn: Connection, alerts: Sequence[tuple[uuid.UUID, str | None, dict[str, Any]]]) -> None:
    if not alerts:
        return
    with conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO alert_outbox (failure_id, market_id, payload) VALUES %s ON CONFLICT (failure_id) DO NOTHING",
            [(fid, market, _json(payload)) for fid, market, payload in alerts],
            page_size=len(alerts),
        )


def pending_alerts(conn: Connection, limit: int = 5000) -> list[tuple[uuid.UUID, str | None, dict[str, Any]]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT failure_id, market_id, payload FROM alert_outbox WHERE sent_at IS NULL "
            "ORDER BY created_at, failure_id LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        )
        return [(r[0], r[1], r[2]) for r in cur.fetchall()]


def mark_sent(conn: Connection, failure_ids: Sequence[uuid.UUID]) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE alert_outbox SET sent_at = now() WHERE failure_id = ANY(%s::uuid[])",
            ([str(f) for f in failure_ids],),
        )


# --- reading (the API) ---


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
    outcomes: list[str] | None = None
    open_only: bool = False
    overdue_at: datetime | None = None  # overdue=true: open and due before this instant
    since: datetime | None = None
    until: datetime | None = None


def _where(f: FailureFilter) -> Where:
    where = Where().markets(f.markets).equal({c: getattr(f, c) for c in (
        "market_id", "station_id", "device_id", "analyte", "commodity", "strip_lot")})
    for column, values in (("kind", f.kinds), ("state", f.states), ("outcome", f.outcomes)):
        if values:
            where.add(f"{column} = ANY(%s)", values)
    where.between("raised_at", f.since, f.until)
    if f.open_only:
        where.add("closed_at IS NULL")
    if f.overdue_at is not None:
        where.add("closed_at IS NULL AND due_at < %s", f.overdue_at)
    return where


def list_failures(
    conn: Connection, f: FailureFilter, limit: int, after: tuple[datetime, str] | None
) -> list[dict[str, Any]]:
    where = _where(f).after(("raised_at", "failure_id"), after, descending=True, placeholders=("%s", "%s::uuid"))
    query = (f"SELECT {', '.join(LIST_FIELDS)} FROM failures {where.sql()} "
             "ORDER BY raised_at DESC, failure_id DESC LIMIT %s")
    with conn.cursor() as cur:
        cur.execute(query, [*where.params, limit])
        return [_text_ids(r) for r in dict_rows(cur)]


def get_failure(
    conn: Connection, failure_id: uuid.UUID | str, markets: list[str] | None, lock: bool = False
) -> dict[str, Any] | None:
    """One failure inside the principal's markets (a failure with no market is regulator-only)."""
    query = f"SELECT {', '.join(LIST_FIELDS)}, details FROM failures WHERE failure_id = %s::uuid"
    params: list[Any] = [str(failure_id)]
    if markets is not None:
        query += " AND market_id = ANY(%s)"
        params.append(markets)
    with conn.cursor() as cur:
        cur.execute(query + (" FOR UPDATE" if lock else ""), params)
        found = dict_rows(cur)
    return _text_ids(found[0]) if found else None


#: What a page words a failure's summary from that a list (or the live feed) may lack; ``parent_kind`` is the kind
#: of the failure an overdue step is about.
DISPLAY_FIELDS = ("details", "subject", "parent_failure_id", "certificate_no", "occurrences", "parent_kind")


def display_facts(conn: Connection, failure_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:data:`DISPLAY_FIELDS` of each failure, by failure id (one query for a page's rows or a feed batch)."""
    if not failure_ids:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT f.failure_id::text, f.details, f.subject, f.parent_failure_id::text, f.certificate_no, "
            "f.occurrences, p.kind FROM failures f LEFT JOIN failures p ON p.failure_id = f.parent_failure_id "
            "WHERE f.failure_id = ANY(%s::uuid[])",
            (list(dict.fromkeys(str(i) for i in failure_ids)),),
        )
        return {row[0]: dict(zip(DISPLAY_FIELDS, row[1:], strict=True)) for row in cur.fetchall()}


def newest_readings(conn: Connection, failure_id: str, limit: int = NEWEST_READINGS) -> list[dict[str, Any]]:
    """The newest readings a failure covers, with their verdicts (one chunk each: full keys)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT l.reading_id::text AS reading_id, l.measured_at, v.server_result, v.device_result, "
            "v.device_cutoff, v.ratio FROM (SELECT reading_id, measured_at FROM failure_readings "
            "WHERE failure_id = %s::uuid ORDER BY measured_at DESC, reading_id DESC LIMIT %s) l "
            "LEFT JOIN verdicts v ON v.reading_id = l.reading_id AND v.measured_at = l.measured_at "
            "ORDER BY l.measured_at DESC, l.reading_id DESC",
            (failure_id, limit),
        )
        return dict_rows(cur)


def verdict_at(conn: Connection, reading_id: str, measured_at: datetime) -> dict[str, Any] | None:
    """The server verdict of a reading by its full key, with the thresholds it was judged by."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT v.device_result, v.server_result, v.rule, v.reason, v.ratio, v.concentration, v.device_cutoff, "
            "v.verdict_mismatch, v.cutoff_mismatch, v.thresholds_digest, s.thresholds, v.judged_at "
            "FROM verdicts v LEFT JOIN threshold_snapshots s ON s.digest = v.thresholds_digest "
            "WHERE v.reading_id = %s::uuid AND v.measured_at = %s",
            (reading_id, measured_at),
        )
        found = dict_rows(cur)
    return found[0] if found else None


def history(conn: Connection, failure_id: str) -> list[dict[str, Any]]:
    """A failure's events, oldest first (read once per request; :func:`events_of` types them)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(EVENT_FIELDS)} FROM failure_events WHERE failure_id = %s::uuid ORDER BY seq",
            (failure_id,),
        )
        return dict_rows(cur)


def events_of(rows: Sequence[dict[str, Any]]) -> list[workflow.Event]:
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
        for r in rows
    ]


def record_action(
    conn: Connection, failure_id: str, event: workflow.Event, status: workflow.Status, due: datetime | None,
    outcome: str | None,
) -> int:
    """Append the event and refresh the cached workflow columns, in the open transaction; returns its seq."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE failures SET state = %s, state_since = %s, due_at = %s, closed_at = %s, outcome = %s "
            "WHERE failure_id = %s::uuid",
            (status.state.value, status.since, due, status.since if status.closed else None, outcome, failure_id),
        )
    return append_events(conn, [(failure_id, event)])[0]


# --- the live feed (SSE) ---

FEED_FIELDS = (
    "e.seq", "e.failure_id", "e.action", "e.from_state", "e.to_state", "e.actor", "e.role", "e.at", "e.note",
    "f.kind", "f.summary", "f.market_id", "f.station_id", "f.device_id", "f.analyte", "f.commodity", "f.strip_lot",
    "f.reading_id", "f.raised_at", "f.state", "f.due_at",
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
        return [_text_ids(r) for r in dict_rows(cur)]


def latest_seq(conn: Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(seq), 0) FROM failure_events")
        found = cur.fetchone()
    return int(found[0]) if found else 0


# --- outcomes per reader and per strip lot (GET /v1/devices, GET /v1/strip-lots) ---

_OUTCOME_KEYS = {"device": ("device_id",), "strip_lot": ("analyte", "strip_lot")}


def outcome_counts(
    conn: Connection, by: str, keys: Sequence[tuple[str, ...]], since: datetime | None = None,
    until: datetime | None = None, markets: Sequence[str] | None = None, market_id: str | None = None,
) -> dict[tuple[str, ...], dict[str, int]]:
    """Screen failures per key (``by`` = 'device' → (device_id,), 'strip_lot' → (analyte, strip_lot)) by
    outcome: false_positive, confirmed, and how many are screened (positive/suspicious) in all."""
    if not keys:
        return {}
    cols = _OUTCOME_KEYS[by]
    arrays = ", ".join("%s::text[]" for _ in cols)
    match = " AND ".join(f"f.{c} = k.{c}" for c in cols)
    time = ""
    params: list[Any] = [[k[i] for k in keys] for i in range(len(cols))]
    if since is not None:
        time += " AND f.measured_at >= %s"
        params.append(since)
    if until is not None:
        time += " AND f.measured_at < %s"
        params.append(until)
    if markets is not None:
        time += " AND f.market_id = ANY(%s)"
        params.append(list(markets))
    if market_id is not None:
        time += " AND f.market_id = %s"
        params.append(market_id)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join('k.' + c for c in cols)}, count(*), "
            "count(*) FILTER (WHERE f.outcome = 'false_positive'), count(*) FILTER (WHERE f.outcome = 'confirmed') "
            f"FROM unnest({arrays}) AS k({', '.join(cols)}) "
            f"JOIN failures f ON {match} AND f.kind IN ('positive', 'suspicious'){time} "
            f"GROUP BY {', '.join('k.' + c for c in cols)}",
            params,
        )
        n = len(cols)
        return {
            tuple(r[:n]): {"screen_failures": int(r[n]), "false_positives": int(r[n + 1]), "confirmed": int(r[n + 2])}
            for r in cur.fetchall()
        }
