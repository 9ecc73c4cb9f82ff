"""Reading store: ``rt.readings.v1`` → the ``readings`` table, idempotently.

A batch is COPY'd into a per-connection staging table and moved with
``INSERT … ON CONFLICT DO NOTHING``, so a redelivered reading is one row.
"""

from __future__ import annotations

from typing import Any

from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import Counter

from consumers.copy_text import copy_buffer
from consumers.records import parse_reading
from schemas.envelope import ReadingRecord
from schemas.settings import Settings
from storage.db import Connection

INSERTED = Counter("rt_readings_inserted_total", "Readings stored (duplicates excluded)")
DUPLICATES = Counter("rt_readings_duplicates_total", "Redelivered readings that were already stored")

COLUMNS = (
    "reading_id", "measured_at", "received_at", "market_id", "station_id", "device_id", "sample_id",
    "commodity", "commodity_category", "vendor_id", "certificate_no", "lot_code", "analyte", "method",
    "method_standard", "strip_lot", "cutoff_ratio", "c_line", "t_line", "inhibition_pct", "device_result",
    "operator_id", "firmware", "raw",
)
_COLS = ", ".join(COLUMNS)
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS readings_stage AS SELECT " + _COLS + " FROM readings WITH NO DATA"
)
_MOVE = (
    f"INSERT INTO readings ({_COLS}) SELECT {_COLS} FROM readings_stage "
    "ON CONFLICT (reading_id, measured_at) DO NOTHING"
)


def row(rec: ReadingRecord) -> tuple[Any, ...]:
    r = rec.reading
    s, a, sig = r.sample, r.assay, r.signal
    return (
        r.reading_id, r.measured_at.isoformat(), rec.received_at.isoformat(),
        rec.market_id, rec.station_id, rec.device_id, s.sample_id,
        s.commodity, s.commodity_category, s.vendor_id, s.certificate_no, s.lot_code, a.analyte, a.method.value,
        a.method_standard, a.strip_lot, a.cutoff_ratio, sig.c_line, sig.t_line, sig.inhibition_pct,
        r.device_result.value if r.device_result else None, r.operator_id, r.firmware, rec.raw,
    )


def store_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert rows idempotently in the open transaction; returns how many were new."""
    with conn.cursor() as cur:
        cur.execute(_STAGE)
        cur.execute("TRUNCATE readings_stage")
        cur.copy_expert(f"COPY readings_stage ({_COLS}) FROM STDIN", copy_buffer(rows))
        cur.execute(_MOVE)
        inserted = int(cur.rowcount)
        cur.execute("TRUNCATE readings_stage")
    return inserted


class ReadingStore:
    name = "store"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def topics(self, settings: Settings) -> list[str]:
        return [settings.topic_readings]

    def handle(self, conn: Connection, records: list[ConsumerRecord]) -> int:
        rows = [row(parse_reading(r)) for r in records]
        inserted = store_rows(conn, rows)
        INSERTED.inc(inserted)
        DUPLICATES.inc(len(rows) - inserted)
        return inserted

    def after_commit(self, result: Any) -> None:
        return None
