"""The ``rt.deadletter.v1`` envelope: build one, read one (v1 or v2), and its identity.

A dead letter is identified by ``deadletter_id``, a UUID made where the dead letter is made (the
bridge, a consumer, the API), never by its position in a Kafka log: a log that starts over (a
memory-only broker restarted, a topic recreated) hands out the same offsets again.

v2 adds ``deadletter_id``; v1 values (written before it) get a deterministic id from their
content and ``received_at`` (:func:`content_id`), the same one migration 0007 gives stored v1 rows,
so a v1 value redelivered after the migration is still one row.  Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.common import rfc3339, utc_now

Source = Literal["mqtt", "http", "kafka"]

#: Stored ``source_topic`` is cut to this many characters.
SOURCE_TOPIC_MAX = 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DeadLetter(BaseModel):
    """Value of ``rt.deadletter.v1`` (key: the source topic or route)."""

    model_config = ConfigDict(frozen=True)

    v: Literal[1, 2] = 2
    deadletter_id: uuid.UUID | None = None  # absent in v1 values
    source: Source
    source_topic: str
    code: str
    reason: str
    received_at: datetime
    raw_b64: str

    def raw(self) -> bytes:
        return base64.b64decode(self.raw_b64, validate=True)

    def identity(self) -> uuid.UUID:
        """The id it was made with, or (v1) the deterministic one of its content."""
        if self.deadletter_id is not None:
            return self.deadletter_id
        return content_id(self.source, self.source_topic[:SOURCE_TOPIC_MAX], self.code, self.reason,
                          self.raw(), self.received_at)


def content_id(source: str, source_topic: str, code: str, reason: str, raw: bytes,
               received_at: datetime) -> uuid.UUID:
    """A UUID from a dead letter's content and time: md5 of the fields, one per line, ``raw`` in hex,
    ``received_at`` as integer microseconds since the epoch.  Migration 0007 computes the same in SQL:
    ``md5(source||E'\\n'||source_topic||…||encode(raw,'hex')||E'\\n'||micros)::uuid``."""
    micros = (received_at.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    text = "\n".join((source, source_topic, code, reason, raw.hex(), str(micros)))
    return uuid.UUID(hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest())


def new_deadletter_id() -> uuid.UUID:
    return uuid.uuid4()


def deadletter_value(
    source: str,
    source_topic: str,
    raw: bytes,
    code: str,
    reason: str,
    received_at: datetime | None = None,
    deadletter_id: uuid.UUID | None = None,
) -> bytes:
    """A v2 ``rt.deadletter.v1`` value: a fresh id, the raw bytes, where they came from, why, and when."""
    return json.dumps(
        {
            "v": 2,
            "deadletter_id": str(deadletter_id or new_deadletter_id()),
            "source": source,
            "source_topic": source_topic,
            "code": code,
            "reason": reason,
            "received_at": rfc3339(received_at or utc_now()),
            "raw_b64": base64.b64encode(raw).decode("ascii"),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
