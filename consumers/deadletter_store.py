"""Dead-letter store: ``rt.deadletter.v1`` → the ``deadletters`` table, so the API can show them.

Keyed by Kafka position, so a redelivered dead letter is one row.  A value
that is not a dead letter we wrote is stored all the same, with its bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord
from psycopg2.extras import execute_values
from pydantic import ValidationError

from schemas.common import utc_now
from schemas.envelope import DeadLetter
from schemas.settings import Settings
from storage.db import Connection

_INSERT = (
    "INSERT INTO deadletters (received_at, source, source_topic, code, reason, raw, raw_text,"
    " kafka_topic, kafka_partition, kafka_offset) VALUES %s"
    " ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING"
)


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8").replace("\x00", "")
    except UnicodeDecodeError:
        return None


def row(record: ConsumerRecord) -> tuple[Any, ...]:
    value = record.value or b""
    position = (record.topic, record.partition, record.offset)
    try:
        dl = DeadLetter.model_validate_json(value)
        raw = base64.b64decode(dl.raw_b64)
        return (dl.received_at, dl.source, dl.source_topic[:1024], dl.code, dl.reason, raw, _text(raw), *position)
    except (ValidationError, ValueError):
        return (utc_now(), "kafka", record.topic, "unreadable_deadletter",
                "a record on the dead-letter topic was not a rapidtrace dead letter", value, _text(value), *position)


class DeadletterStore:
    name = "deadletters"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def topics(self, settings: Settings) -> list[str]:
        return [settings.topic_deadletter]

    def handle(self, conn: Connection, records: list[ConsumerRecord]) -> int:
        with conn.cursor() as cur:
            execute_values(cur, _INSERT, [row(r) for r in records], page_size=500)
            return int(cur.rowcount)

    def after_commit(self, result: Any) -> None:
        return None
