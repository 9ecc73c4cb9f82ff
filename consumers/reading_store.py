"""Reading store: ``rt.readings.v1`` → the ``readings`` table, idempotently, one row per reading_id.

A batch is COPY'd into a per-connection staging table, its ids claimed in
``reading_ids`` and moved with ``INSERT … ON CONFLICT DO NOTHING``, so a
redelivered reading is one row; a reading_id re-sent with another
``measured_at`` or payload is a dead letter ``reading_conflict`` naming both
times (``storage/readings.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from consumers.records import parse_reading
from consumers.runner import PoisonRecord, Record, Sink
from schemas.envelope import ReadingRecord
from schemas.settings import Settings
from storage.copy_text import copy_buffer
from storage.db import Connection
from storage.readings import STORE_COLUMNS, store_readings

INSERTED = Counter("rt_readings_inserted_total", "Readings stored (duplicates excluded)")
DUPLICATES = Counter("rt_readings_duplicates_total", "Redelivered readings that were already stored")

COLUMNS = STORE_COLUMNS


def row(rec: ReadingRecord, ordinal: int = 0) -> tuple[Any, ...]:
    f = rec.facts
    return (
        f.reading_id, f.measured_at.isoformat(), rec.received_at.isoformat(),
        rec.market_id, rec.station_id, rec.device_id, f.sample_id,
        f.commodity, f.commodity_category, f.vendor_id, f.certificate_no, f.lot_code, f.analyte, f.method.value,
        f.method_standard, f.strip_lot, f.cutoff_ratio, f.c_line, f.t_line, f.inhibition_pct,
        f.device_result, f.operator_id, f.firmware, rec.raw, ordinal,
    )


def store_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert rows idempotently in the open transaction; returns how many were new.

    A conflicting reading_id raises :class:`PoisonRecord` (``reading_conflict``): the runner then
    writes the batch record by record and dead-letters the conflicting one with its reason."""
    inserted, conflicts = store_readings(conn, copy_buffer(rows))
    if conflicts:
        raise PoisonRecord("reading_conflict", "; ".join(c.reason() for c in conflicts))
    return inserted


class ReadingStore:
    name = "store"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def topics(self, settings: Settings) -> list[str]:
        return [settings.topic_readings]

    def handle(self, conn: Connection, records: Sequence[Record]) -> int:
        return self.store(conn, [parse_reading(r) for r in records])

    def store(self, conn: Connection, parsed: list[ReadingRecord]) -> int:
        """Store parsed readings and claim their ids in the open transaction; returns how many were new."""
        rows = [row(p, i) for i, p in enumerate(parsed)]
        inserted = store_rows(conn, rows)
        INSERTED.inc(inserted)
        DUPLICATES.inc(len(rows) - inserted)
        return inserted

    def after_commit(self, result: Any, out: Sink) -> None:
        return None
