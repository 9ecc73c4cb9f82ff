"""SQL of the flagger and the failure workflow: verdicts, failures, events, outbox, device activity.

Every write here runs inside the caller's open transaction and is idempotent
(``ON CONFLICT DO NOTHING`` on natural keys), so a redelivered batch writes
nothing twice.  The API's workflow actions use :func:`append_events` too, so
the event stream has one writer discipline (see ``EVENT_LOCK``).
"""

from __future__ import annotations

import hashlib
import json
import operator
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import execute_values

from consumers.copy_text import copy_buffer
from domain import workflow
from domain.anomaly import Counts, DeviceSeen
from domain.judging import RegistryEntry, Scope
from storage.db import Connection

#: Taken (transaction-scoped) right before inserting failure events, so their
#: ``seq`` order is their commit order and a stream reader never skips one.
EVENT_LOCK = 7520121
FAILURE_NAMESPACE = uuid.UUID("6f1f8a52-3c57-4d0e-9a51-8f1e2b7c0d33")


def failure_id_for(dedup_key: str) -> uuid.UUID:
    """The same failure always gets the same id (stable across redeliveries and replays)."""
    return uuid.uuid5(FAILURE_NAMESPACE, dedup_key)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# --- threshold registry ---


def registry_version(conn: Connection) -> tuple[int, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0), count(*) FROM threshold_sets")
        found = cur.fetchone()
    return (int(found[0]), int(found[1])) if found else (0, 0)


def load_registry(conn: Connection) -> list[RegistryEntry]:
    with conn.cursor() as cur:
        cur.execute("SELECT id, scope, analyte, strip_lot, valid_from, params FROM threshold_sets ORDER BY id")
        return [RegistryEntry(r[0], Scope(r[1]), r[2], r[3], r[4], r[5]) for r in cur.fetchall()]


# --- verdicts ---

VERDICT_COLUMNS = (
    "reading_id",
    "measured_at",
    "received_at",
    "market_id",
    "station_id",
    "device_id",
    "analyte",
    "commodity",
    "commodity_category",
    "region_code",
    "strip_lot",
    "method",
    "device_result",
    "server_result",
    "rule",
    "reason",
    "ratio",
    "concentration",
    "device_cutoff",
    "verdict_mismatch",
    "cutoff_mismatch",
    "thresholds_digest",
)


_VCOLS = ", ".join(VERDICT_COLUMNS)
_verdict_values = operator.itemgetter(*VERDICT_COLUMNS)
_VSTAGE = f"CREATE TEMP TABLE IF NOT EXISTS verdicts_stage AS SELECT {_VCOLS} FROM verdicts WITH NO DATA"


def insert_verdicts(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert verdict rows (COPY into a session staging table, then one INSERT);
    returns the reading ids that were new (not redeliveries)."""
    if not rows:
        return set()
    with conn.cursor() as cur:
        cur.execute(_VSTAGE)
        cur.execute("TRUNCATE verdicts_stage")
        cur.copy_expert(
            f"COPY verdicts_stage ({_VCOLS}) FROM STDIN",
            copy_buffer(map(_verdict_values, rows)),
        )
        cur.execute(
            f"INSERT INTO verdicts ({_VCOLS}) SELECT {_VCOLS} FROM verdicts_stage "
            "ON CONFLICT (reading_id, measured_at) DO NOTHING RETURNING reading_id"
        )
        inserted = {r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(r[0]) for r in cur.fetchall()}
        cur.execute("TRUNCATE verdicts_stage")
    return inserted


def snapshot_digest(thresholds: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a resolved threshold set."""
    canonical = json.dumps(thresholds, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def insert_snapshots(conn: Connection, snapshots: dict[str, dict[str, Any]]) -> None:
    if not snapshots:
        return
    with conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO threshold_snapshots (digest, thresholds) VALUES %s ON CONFLICT (digest) DO NOTHING",
            [(d, _json(t)) for d, t in sorted(snapshots.items())],
            page_size=len(snapshots),
        )


# --- device activity ---


def upsert_device_activity(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Fold new verdicts into per-device counters and last-seen times."""
    per: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = per.setdefault(
            r["device_id"],
            {
                "market_id": r["market_id"],
                "station_id": r["station_id"],
                "first": r["measured_at"],
                "last_m": r["measured_at"],
                "last_r": r["received_at"],
                "n": 0,
                "negative": 0,
                "positive": 0,
                "suspicious": 0,
                "invalid": 0,
                "mismatch": 0,
            },
        )
        d["first"] = min(d["first"], r["measured_at"])
        if r["received_at"] >= d["last_r"]:
            d["market_id"], d["station_id"] = r["market_id"], r["station_id"]
        d["last_m"] = max(d["last_m"], r["measured_at"])
        d["last_r"] = max(d["last_r"], r["received_at"])
        d["n"] += 1
        d[r["server_result"]] += 1
        d["mismatch"] += int(r["verdict_mismatch"])
    values = [
        (
            k,
            d["market_id"],
            d["station_id"],
            d["first"],
            d["last_m"],
            d["last_r"],
            d["n"],
            d["negative"],
            d["positive"],
            d["suspicious"],
            d["invalid"],
            d["mismatch"],
        )
        for k, d in sorted(per.items())
    ]
    if not values:
        return
    with conn.cursor() as cur:
        execute_values(
            cur,
            """
            INSERT INTO device_activity AS t (device_id, market_id, station_id, first_seen, last_measured_at,
                last_received_at, tests, negative, positive, suspicious, invalid, verdict_mismatch)
            VALUES %s
            ON CONFLICT (device_id) DO UPDATE SET
                market_id = CASE WHEN EXCLUDED.last_received_at >= t.last_received_at
                                 THEN EXCLUDED.market_id ELSE t.market_id END,
                station_id = CASE WHEN EXCLUDED.last_received_at >= t.last_received_at
                                  THEN EXCLUDED.station_id ELSE t.station_id END,
                first_seen = least(t.first_seen, EXCLUDED.first_seen),
                last_measured_at = greatest(t.last_measured_at, EXCLUDED.last_measured_at),
                last_received_at = greatest(t.last_received_at, EXCLUDED.last_received_at),
                tests = t.tests + EXCLUDED.tests, negative = t.negative + EXCLUDED.negative,
                positive = t.positive + EXCLUDED.positive, suspicious = t.suspicious + EXCLUDED.suspicious,
                invalid = t.invalid + EXCLUDED.invalid,
                verdict_mismatch = t.verdict_mismatch + EXCLUDED.verdict_mismatch
        """,
            values,
            page_size=len(values),
        )


def devices_seen(conn: Connection) -> list[DeviceSeen]:
    with conn.cursor() as cur:
        cur.execute("SELECT device_id, market_id, station_id, last_received_at FROM device_activity")
        return [DeviceSeen(*r) for r in cur.fetchall()]


# --- anomaly inputs ---


def recent_invalid_counts(
    conn: Connection, subject: str, keys: Sequence[tuple[str, ...]], window: int, baseline: int
) -> dict[tuple[str, ...], tuple[Counts, Counts]]:
    """Per device (``subject='device'``, keys (device_id,)) or strip lot (keys (analyte, strip_lot)):
    invalid counts over its newest ``window`` verdicts and over the ``baseline`` before them."""
    if not keys:
        return {}
    if subject == "device":
        source = "unnest(%s::text[]) AS s(k1)"
        match = "v.device_id = s.k1"
        params: list[Any] = [[k[0] for k in keys]]
        select = "s.k1"
    else:
        source = "unnest(%s::text[], %s::text[]) AS s(k1, k2)"
        match = "v.analyte = s.k1 AND v.strip_lot = s.k2"
        params = [[k[0] for k in keys], [k[1] for k in keys]]
        select = "s.k1, s.k2"
    query = f"""
        SELECT {select},
               count(*) FILTER (WHERE x.rn <= %s), count(*) FILTER (WHERE x.rn <= %s AND x.inv),
               count(*) FILTER (WHERE x.rn > %s), count(*) FILTER (WHERE x.rn > %s AND x.inv)
        FROM {source}
        CROSS JOIN LATERAL (
            SELECT v.server_result = 'invalid' AS inv, row_number() OVER (ORDER BY v.measured_at DESC) AS rn
            FROM verdicts v WHERE {match} ORDER BY v.measured_at DESC LIMIT %s) AS x
        GROUP BY {select}
    """
    with conn.cursor() as cur:
        cur.execute(query, [window, window, window, window, *params, window + baseline])
        out = {}
        for row in cur.fetchall():
            n = len(keys[0])
            key, (wt, wi, bt, bi) = tuple(row[:n]), row[n:]
            out[key] = (Counts(int(wt), int(wi)), Counts(int(bt), int(bi)))
        return out


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


# --- failures ---

FAILURE_COLUMNS = (
    "failure_id",
    "dedup_key",
    "kind",
    "workflow",
    "raised_at",
    "summary",
    "details",
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
    "state",
    "state_since",
    "due_at",
    "closed_at",
)


@dataclass(frozen=True)
class NewFailure:
    """A failure to raise: its row (without workflow columns) and its opening events."""

    row: dict[str, Any]
    events: list[workflow.Event]


def insert_failures(conn: Connection, failures: Sequence[NewFailure], rules: workflow.Deadlines) -> list[NewFailure]:
    """Insert failures not raised before; returns those that were new."""
    if not failures:
        return []
    values = []
    for f in failures:
        status = workflow.current(f.events)
        full = {
            "wholesale": False,
            **f.row,
            "state": status.state.value,
            "state_since": status.since,
            "due_at": workflow.due_at(status, rules, f.row.get("wholesale", False)),
            "closed_at": status.since if status.closed else None,
        }
        full["region_code"] = full.get("region_code") or ""
        values.append(tuple(_json(full[c]) if c == "details" else full.get(c) for c in FAILURE_COLUMNS))
    with conn.cursor() as cur:
        returned = execute_values(
            cur,
            f"INSERT INTO failures ({', '.join(FAILURE_COLUMNS)}) VALUES %s "
            "ON CONFLICT (dedup_key) DO NOTHING RETURNING failure_id",
            values,
            page_size=len(values),
            fetch=True,
        )
    new_ids = {r[0] for r in returned}
    return [f for f in failures if f.row["failure_id"] in new_ids]


def append_events(conn: Connection, items: Sequence[tuple[uuid.UUID, workflow.Event]]) -> list[int]:
    """Append events in order under ``EVENT_LOCK``; returns their seq numbers.

    Call this as the last write of the transaction: the lock is held until commit.
    """
    if not items:
        return []
    values = [
        (
            fid,
            e.action,
            e.from_state.value if e.from_state else None,
            e.to_state.value,
            e.actor,
            e.role,
            e.at,
            e.note,
            _json(e.evidence),
        )
        for fid, e in items
    ]
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (EVENT_LOCK,))
        returned = execute_values(
            cur,
            "INSERT INTO failure_events (failure_id, action, from_state, to_state, actor, role, at, note, evidence) "
            "VALUES %s RETURNING seq",
            values,
            page_size=len(values),
            fetch=True,
        )
    return [int(r[0]) for r in returned]


def load_events(conn: Connection, failure_id: uuid.UUID) -> list[workflow.Event]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT action, from_state, to_state, actor, role, at, note, evidence FROM failure_events "
            "WHERE failure_id = %s ORDER BY seq",
            (failure_id,),
        )
        return [
            workflow.Event(
                r[0], workflow.State(r[1]) if r[1] else None, workflow.State(r[2]), r[3], r[4], r[5], r[6], r[7] or {}
            )
            for r in cur.fetchall()
        ]


def save_status(conn: Connection, failure_id: uuid.UUID, status: workflow.Status, due: datetime | None) -> None:
    """Rewrite the cached workflow columns of one failure from its derived status."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE failures SET state = %s, state_since = %s, due_at = %s, closed_at = %s WHERE failure_id = %s",
            (status.state.value, status.since, due, status.since if status.closed else None, failure_id),
        )


def overdue_failures(conn: Connection, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Open failures past their step's deadline (overdue failures themselves excluded)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT failure_id, kind, state, state_since, due_at, market_id, station_id, device_id, analyte, "
            "commodity, region_code, strip_lot, reading_id FROM failures "
            "WHERE closed_at IS NULL AND due_at < %s AND kind <> 'overdue' ORDER BY due_at LIMIT %s",
            (now, limit),
        )
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


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
