"""What the bridge puts on Kafka: a validated reading with the ids of record."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.common import AwareDatetime, Identifier
from schemas.reading import Reading


class ReadingEnvelope(BaseModel):
    """Value of ``rt.readings.v1`` (key: ``station_id``).

    ``payload`` is the reading object exactly as the device published it
    (unknown fields included); the ids come from the MQTT topic.
    """

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    market_id: Identifier
    station_id: Identifier
    device_id: Identifier
    mqtt_topic: str
    received_at: AwareDatetime
    payload: dict[str, Any]

    def reading(self) -> Reading:
        return Reading.model_validate(self.payload)


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
