"""SQL of the dead letters (table ``deadletters``): the dead-letter consumer writes them, the API reads them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import execute_values

from storage.db import Connection
from storage.where import Where

_INSERT = (
    "INSERT INTO deadletters (received_at, source, source_topic, code, reason, raw, raw_text,"
    " kafka_topic, kafka_partition, kafka_offset, deadletter_id) VALUES %s"
    " ON CONFLICT (deadletter_id) DO NOTHING"
)


def insert_deadletters(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Rows of (received_at, source, source_topic, code, reason, raw, raw_text, kafka_topic, kafka_partition,
    kafka_offset, deadletter_id), each once (keyed by deadletter_id); returns how many were new."""
    with conn.cursor() as cur:
        execute_values(cur, _INSERT, rows, page_size=max(1, len(rows)))  # one page: rowcount counts them all
        return int(cur.rowcount)


@dataclass(frozen=True)
class DeadLetterRow:
    id: int
    received_at: datetime
    source: str
    source_topic: str | None
    code: str
    reason: str
    raw_b64: str
    raw_text: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_deadletters(conn: Connection, *, code: str | None = None, source: str | None = None,
                     before_id: int | None = None, limit: int = 100) -> list[DeadLetterRow]:
    """Dead letters newest first, keyset-paginated by id."""
    where = Where().equal({"code": code, "source": source}).after("id", before_id, descending=True)
    with conn.cursor() as cur:
        cur.execute("SELECT id, received_at, source, source_topic, code, reason, raw, raw_text FROM deadletters "
                    f"{where.sql()} ORDER BY id DESC LIMIT %s", (*where.params, limit))
        rows = cur.fetchall()
    return [DeadLetterRow(r[0], r[1], r[2], r[3], r[4], r[5], base64.b64encode(bytes(r[6])).decode(), r[7])
            for r in rows]
