"""SQL of the readings family: one row per ``reading_id`` (``reading_ids``), lookups by id, lists.

A reading_id is one reading whatever its ``measured_at`` (SPEC.md); the
hypertable's unique key cannot say so because it must include the time
column, so every writer of reading_id-keyed rows claims the id in
``reading_ids`` in its batch's transaction (:func:`claim_from_stage`), and
every lookup by reading_id alone reads ``measured_at`` there first
(:func:`locate`), so on TimescaleDB it touches one chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from storage.db import Connection, dict_rows
from storage.where import Where

#: SHA-256 of a payload held in a jsonb column ``raw`` of the staging table (jsonb text is normalised).
_CONTENT = "sha256(convert_to(s.raw::text, 'UTF8'))"


@dataclass(frozen=True)
class Conflict:
    """A reading_id re-sent with another measured_at or another payload."""

    reading_id: uuid.UUID
    stored_measured_at: datetime
    new_measured_at: datetime
    same_time: bool
    ord: int  # the conflicting row's arrival ordinal in its batch

    def reason(self) -> str:
        what = "a different payload" if self.same_time else "a different measured_at"
        return (
            f"reading_id {self.reading_id} was already stored with measured_at "
            f"{self.stored_measured_at.isoformat()}; this re-send has measured_at "
            f"{self.new_measured_at.isoformat()} and {what}: one reading_id is one reading"
        )


def claim_from_stage(conn: Connection, stage: str, staged: int) -> list[Conflict]:
    """Claim the ids of the staging table ``stage`` (columns reading_id, measured_at, raw jsonb, ord
    for arrival order) in ``reading_ids``; returns the rows that conflict with an earlier claim.

    The first claim of an id wins (by ``ord`` inside one batch); a later row with the same
    measured_at and payload is a redelivery, not a conflict.  ``staged`` is the stage's row count:
    a claim of every staged row can have no conflict, so the check that would compare them with
    the claims is skipped (the usual batch: every id new)."""
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO reading_ids (reading_id, measured_at, content_sha256) "
            f"SELECT s.reading_id, s.measured_at, {_CONTENT} FROM {stage} s ORDER BY s.ord "
            "ON CONFLICT (reading_id) DO NOTHING"
        )
        if cur.rowcount == staged:
            return []
        cur.execute(
            f"SELECT s.reading_id, i.measured_at, s.measured_at, i.measured_at = s.measured_at, s.ord FROM {stage} s "
            "JOIN reading_ids i ON i.reading_id = s.reading_id "
            f"WHERE i.measured_at <> s.measured_at OR i.content_sha256 <> {_CONTENT} ORDER BY s.ord"
        )
        found = cur.fetchall()
    return [Conflict(_uuid(r[0]), r[1], r[2], bool(r[3]), int(r[4])) for r in found]


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def locate(conn: Connection, reading_id: uuid.UUID | str) -> datetime | None:
    """The measured_at of a reading_id (one primary-key lookup), or None when unknown."""
    with conn.cursor() as cur:
        cur.execute("SELECT measured_at FROM reading_ids WHERE reading_id = %s::uuid", (str(reading_id),))
        found = cur.fetchone()
    return found[0] if found else None


READING_COLUMNS = (
    "reading_id", "measured_at", "received_at", "stored_at", "market_id", "station_id", "device_id", "sample_id",
    "commodity", "commodity_category", "vendor_id", "certificate_no", "lot_code", "analyte", "method",
    "method_standard", "strip_lot", "cutoff_ratio", "c_line", "t_line", "inhibition_pct", "device_result",
    "operator_id", "firmware",
)
#: The server's side of a reading (LEFT JOIN verdicts v): null until the flagger judged it.
VERDICT_COLUMNS = ("server_result", "verdict_mismatch", "cutoff_mismatch", "rule", "reason", "ratio")


@dataclass(frozen=True)
class ReadingFilter:
    markets: Sequence[str] | None = None  # the principal's scope; None = all
    market_id: str | None = None
    station_id: str | None = None
    device_id: str | None = None
    analyte: str | None = None
    commodity: str | None = None
    device_result: str | None = None
    server_result: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_readings(
    conn: Connection, f: ReadingFilter, limit: int, after: tuple[datetime, str] | None, include_raw: bool
) -> list[dict[str, Any]]:
    """Readings newest first (keyset on measured_at, reading_id) with the server's verdict beside the
    device's (a reading not judged yet has none; ``verdict=`` then leaves it out)."""
    where = (
        Where()
        .markets(list(f.markets) if f.markets is not None else None, "r.market_id")
        .equal({f"r.{c}": getattr(f, c)
                for c in ("market_id", "station_id", "device_id", "analyte", "commodity", "device_result")})
        .equal({"v.server_result": f.server_result})
        .between("r.measured_at", f.since, f.until)
        .after(("r.measured_at", "r.reading_id"), after, descending=True, placeholders=("%s", "%s::uuid"))
    )
    columns = ", ".join(
        [f"r.{c}" for c in READING_COLUMNS] + [f"v.{c}" for c in VERDICT_COLUMNS] + (["r.raw"] if include_raw else [])
    )
    query = (
        f"SELECT {columns} FROM readings r LEFT JOIN verdicts v "
        "ON v.reading_id = r.reading_id AND v.measured_at = r.measured_at "
        f"{where.sql()} ORDER BY r.measured_at DESC, r.reading_id DESC LIMIT %s"
    )
    with conn.cursor() as cur:
        cur.execute(query, [*where.params, limit])
        found = dict_rows(cur)
    for row in found:
        _agreement(row)
    return found


def _agreement(row: dict[str, Any]) -> dict[str, Any]:
    row["reading_id"] = str(row["reading_id"])
    server, device = row.get("server_result"), row.get("device_result")
    row["agrees"] = None if server is None or device is None else server == device
    return row


def get_reading(
    conn: Connection, reading_id: uuid.UUID | str, markets: Sequence[str] | None, include_raw: bool = True
) -> dict[str, Any] | None:
    """One reading by id with its server verdict, in ``markets``: ``measured_at`` from ``reading_ids``
    first, then a lookup by the full key with a constant time (chunk exclusion at plan time)."""
    measured_at = locate(conn, reading_id)
    if measured_at is None:
        return None
    return get_reading_at(conn, reading_id, measured_at, markets, include_raw)


def get_reading_at(
    conn: Connection,
    reading_id: uuid.UUID | str,
    measured_at: datetime,
    markets: Sequence[str] | None = None,
    include_raw: bool = True,
) -> dict[str, Any] | None:
    """One reading by its full key (one chunk on TimescaleDB) with its server verdict."""
    columns = ", ".join(
        [f"r.{c}" for c in READING_COLUMNS]
        + [f"v.{c}" for c in VERDICT_COLUMNS]
        + ["t.thresholds AS thresholds_used"]
        + (["r.raw"] if include_raw else [])
    )
    query = (
        f"SELECT {columns} FROM readings r "
        "LEFT JOIN verdicts v ON v.reading_id = r.reading_id AND v.measured_at = r.measured_at "
        "AND v.measured_at = %s LEFT JOIN threshold_snapshots t ON t.digest = v.thresholds_digest "
        "WHERE r.reading_id = %s::uuid AND r.measured_at = %s"
    )
    params: list[Any] = [measured_at, str(reading_id), measured_at]
    if markets is not None:
        query += " AND r.market_id = ANY(%s)"
        params.append(list(markets))
    with conn.cursor() as cur:
        cur.execute(query, params)
        found = dict_rows(cur)
    if not found:
        return None
    return _agreement(found[0])


# --- the store's write path ---

STORE_COLUMNS = (
    "reading_id", "measured_at", "received_at", "market_id", "station_id", "device_id", "sample_id",
    "commodity", "commodity_category", "vendor_id", "certificate_no", "lot_code", "analyte", "method",
    "method_standard", "strip_lot", "cutoff_ratio", "c_line", "t_line", "inhibition_pct", "device_result",
    "operator_id", "firmware", "raw",
)
_SCOLS = ", ".join(STORE_COLUMNS)
_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS readings_stage AS SELECT {_SCOLS}, 0::bigint AS ord FROM readings WITH NO DATA"
)


def store_readings(conn: Connection, copy_text: TextIO) -> tuple[int, list[Conflict]]:
    """Insert rows (COPY text of ``STORE_COLUMNS`` then an arrival ordinal) in the open transaction,
    claiming each id first: returns (rows new, conflicts).  Nothing is inserted when a row conflicts:
    the caller dead-letters the conflicting reading and writes the rest again."""
    with conn.cursor() as cur:
        cur.execute(_STAGE)
        cur.execute("TRUNCATE readings_stage")
        cur.copy_expert(f"COPY readings_stage ({_SCOLS}, ord) FROM STDIN", copy_text)
        conflicts = claim_from_stage(conn, "readings_stage", cur.rowcount)
        inserted = 0
        if not conflicts:
            cur.execute(
                f"INSERT INTO readings ({_SCOLS}) SELECT {_SCOLS} FROM readings_stage "
                "ON CONFLICT (reading_id, measured_at) DO NOTHING"
            )
            inserted = int(cur.rowcount)
        cur.execute("TRUNCATE readings_stage")
    return inserted, conflicts


_CLAIM_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS reading_claims_stage "
    "(reading_id uuid NOT NULL, measured_at timestamptz NOT NULL, raw jsonb NOT NULL, ord bigint NOT NULL)"
)


def claim(conn: Connection, copy_text: TextIO) -> list[Conflict]:
    """Claim ids for a writer that stores no payload (the flagger's verdicts): ``copy_text`` holds
    (reading_id, measured_at, raw payload, ordinal) rows; returns the conflicting ones."""
    with conn.cursor() as cur:
        cur.execute(_CLAIM_STAGE)
        cur.execute("TRUNCATE reading_claims_stage")
        cur.copy_expert("COPY reading_claims_stage (reading_id, measured_at, raw, ord) FROM STDIN", copy_text)
        conflicts = claim_from_stage(conn, "reading_claims_stage", cur.rowcount)
        cur.execute("TRUNCATE reading_claims_stage")
    return conflicts
