"""Reading the dead letters (table ``deadletters``); the dead-letter consumer writes them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Connection
from storage.where import Where


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
