"""SQL of the verdicts family: verdicts, threshold snapshots, device activity, anomaly inputs (the flagger writes them).

Every write here runs inside the caller's open transaction and is idempotent
(``ON CONFLICT DO NOTHING`` on natural keys), so a redelivered batch writes
nothing twice.  Failures, their events and the outbox are ``storage/failures.py``;
the threshold registry ``storage/thresholds.py``.
"""

from __future__ import annotations

import hashlib
import json
import operator
import uuid
from collections.abc import Sequence
from typing import Any

from psycopg2.extras import execute_values

from domain.anomaly import Counts, DeviceSeen
from storage.copy_text import copy_buffer
from storage.db import Connection


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


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
