"""Dead-letter store: ``rt.deadletter.v1`` → the ``deadletters`` table, so the API can show them.

Keyed by ``deadletter_id`` (given where the dead letter was made; v1 values get the deterministic
id of their content), never by Kafka position: a log that starts over reuses positions.  So a
redelivered dead letter is one row and a new one is never dropped.  A value that is not a dead
letter we wrote is stored all the same, with its bytes, under the id of its bytes and produce time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from consumers.runner import Record, Sink
from schemas.common import utc_now
from schemas.deadletter import SOURCE_TOPIC_MAX, DeadLetter, content_id
from schemas.settings import Settings
from storage.db import Connection
from storage.deadletters import insert_deadletters


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8").replace("\x00", "")
    except UnicodeDecodeError:
        return None


def row(record: Record) -> tuple[Any, ...]:
    value = record.value or b""
    position = (record.topic, record.partition, record.offset)
    try:
        dl = DeadLetter.model_validate_json(value)
        raw = dl.raw()
        return (dl.received_at, dl.source, dl.source_topic[:SOURCE_TOPIC_MAX], dl.code, dl.reason, raw, _text(raw),
                *position, str(dl.identity()))
    except (ValidationError, ValueError):
        produced = (datetime.fromtimestamp(record.timestamp / 1000, UTC)
                    if isinstance(record.timestamp, int) and record.timestamp > 0 else utc_now())
        code, reason = "unreadable_deadletter", "a record on the dead-letter topic was not a rapidtrace dead letter"
        ident = content_id("kafka", record.topic[:SOURCE_TOPIC_MAX], code, reason, value, produced)
        return (produced, "kafka", record.topic[:SOURCE_TOPIC_MAX], code, reason, value, _text(value), *position,
                str(ident))


class DeadletterStore:
    name = "deadletters"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def topics(self, settings: Settings) -> list[str]:
        return [settings.topic_deadletter]

    def handle(self, conn: Connection, records: Sequence[Record]) -> int:
        return insert_deadletters(conn, [row(r) for r in records])

    def after_commit(self, result: Any, out: Sink) -> None:
        return None
