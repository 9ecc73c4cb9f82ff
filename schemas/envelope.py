"""What the bridge puts on Kafka, and how consumers read it back.

A ``rt.readings.v1`` record (key: ``station_id``) carries the reading exactly
as the device published it as its value (validated JSON; unknown fields
kept), and the ids of record from the MQTT topic as headers:
``market_id``, ``station_id``, ``device_id``, ``mqtt_topic``, ``received_at``.
Consumers never re-serialise the payload; they validate it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.common import ID_RE, rfc3339
from schemas.errors import InvalidInput
from schemas.reading import Reading

HEADER_NAMES = ("market_id", "station_id", "device_id", "mqtt_topic", "received_at")


class RecordError(InvalidInput):
    """A Kafka record that is not a reading the bridge wrote."""


def reading_headers(market_id: str, station_id: str, device_id: str, mqtt_topic: str,
                    received_at: datetime) -> list[tuple[str, bytes]]:
    values = (market_id, station_id, device_id, mqtt_topic, rfc3339(received_at))
    return [(name, value.encode()) for name, value in zip(HEADER_NAMES, values, strict=True)]


@dataclass(frozen=True, slots=True)
class ReadingRecord:
    """A reading as consumed: the ids of record, when the bridge got it, the reading, the raw JSON."""

    market_id: str
    station_id: str
    device_id: str
    mqtt_topic: str
    received_at: datetime
    reading: Reading
    raw: str

    @classmethod
    def from_kafka(cls, value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None) -> ReadingRecord:
        """Raises RecordError, or pydantic's ValidationError for a payload that is not a reading."""
        found = {name: (v or b"").decode("utf-8", "replace") for name, v in (headers or ()) if name in HEADER_NAMES}
        missing = [n for n in HEADER_NAMES if n not in found]
        if missing:
            raise RecordError(f"record lacks the headers {', '.join(missing)}")
        for name in ("market_id", "station_id", "device_id"):
            if not ID_RE.match(found[name]):
                raise RecordError(f"header {name} {found[name][:80]!r} is not an identifier")
        try:
            received_at = datetime.fromisoformat(found["received_at"])
        except ValueError:
            raise RecordError(f"header received_at {found['received_at'][:40]!r} is not a time") from None
        raw = (value or b"").decode("utf-8", "replace")
        return cls(found["market_id"], found["station_id"], found["device_id"], found["mqtt_topic"], received_at,
                   Reading.model_validate_json(raw), raw)


class DeadLetter(BaseModel):
    """Value of ``rt.deadletter.v1`` (key: the source topic or route)."""

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    source: Literal["mqtt", "http", "kafka"]
    source_topic: str
    code: str
    reason: str
    received_at: datetime
    raw_b64: str
