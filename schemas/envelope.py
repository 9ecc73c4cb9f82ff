"""What the bridge puts on Kafka, and how consumers read it back: a reading validated once.

A ``rt.readings.v1`` record (key: ``station_id``) carries the reading exactly
as the device published it as its value (validated JSON; unknown fields
kept).  The bridge, which validated it, also writes one header,
``rt_reading``: a compact JSON array of the ids of record from the MQTT topic,
``received_at``, and the reading's fields every consumer needs, already
normalised (UTC times, enum values, the optional ``region_code``) — its
:class:`ReadingFacts`.  Consumers read that header and never re-validate the
payload: one parse and validation per reading in the whole pipeline.

A record without it (written by a bridge before this header existed, or by
another producer) still carries the five headers of version 1 (``market_id``,
``station_id``, ``device_id``, ``mqtt_topic``, ``received_at``) and is
validated in full, so a log written across an upgrade is read unchanged.
The header is checked for shape and types; what it cannot prove (a time, a
uuid, a number) the database's column types do, and a record either check
refuses is a dead letter with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from schemas.common import ID_RE, rfc3339
from schemas.errors import InvalidInput
from schemas.reading import Method, Reading

HEADER_NAMES = ("market_id", "station_id", "device_id", "mqtt_topic", "received_at")
#: The compact header of a validated reading (see the module docstring).
FACTS_HEADER = "rt_reading"
FACTS_VERSION = 1


class RecordError(InvalidInput):
    """A Kafka record that is not a reading the bridge wrote."""


def reading_topic_of(market_id: str, station_id: str, device_id: str) -> str:
    return f"rt/v1/markets/{market_id}/stations/{station_id}/devices/{device_id}/readings"


def reading_headers(market_id: str, station_id: str, device_id: str, mqtt_topic: str,
                    received_at: datetime) -> list[tuple[str, bytes]]:
    """The version-1 headers (no compact form): consumers validate such a record's payload in full."""
    values = (market_id, station_id, device_id, mqtt_topic, rfc3339(received_at))
    return [(name, value.encode()) for name, value in zip(HEADER_NAMES, values, strict=True)]


@dataclass(frozen=True, slots=True)
class ReadingFacts:
    """What the consumers need of a validated reading, normalised: times in UTC, enums as their values."""

    reading_id: UUID
    measured_at: datetime
    sample_id: str | None
    commodity: str
    commodity_category: str | None
    vendor_id: str | None
    certificate_no: str | None
    lot_code: str | None
    analyte: str
    method: Method
    method_standard: str | None
    strip_lot: str
    cutoff_ratio: float | None
    c_line: float | None
    t_line: float | None
    inhibition_pct: float | None
    device_result: str | None
    operator_id: str | None
    firmware: str | None
    region_code: str  # "" when the device sent none

    @classmethod
    def of(cls, r: Reading) -> ReadingFacts:
        s, a, sig = r.sample, r.assay, r.signal
        region = (r.model_extra or {}).get("region_code") or (s.model_extra or {}).get("region_code")
        return cls(
            r.reading_id, r.measured_at, s.sample_id, s.commodity,
            s.commodity_category.value if s.commodity_category else None, s.vendor_id, s.certificate_no,
            s.lot_code, a.analyte, a.method, a.method_standard, a.strip_lot, a.cutoff_ratio, sig.c_line,
            sig.t_line, sig.inhibition_pct, r.device_result.value if r.device_result else None, r.operator_id,
            r.firmware, str(region or "")[:64],
        )


_TEXT_FIELDS = (2, 3, 4, 5, 6, 7, 8, 10, 11, 16, 17, 18, 19)  # ReadingFacts positions holding text
_NUMBER_FIELDS = (12, 13, 14, 15)
_REQUIRED_TEXT = (3, 8, 11)  # commodity, analyte, strip_lot
_N_FACTS = 20


def facts_header(market_id: str, station_id: str, device_id: str, received_at: datetime,
                 f: ReadingFacts) -> tuple[str, bytes]:
    """The ``rt_reading`` header of a reading the bridge validated."""
    row: list[Any] = [FACTS_VERSION, market_id, station_id, device_id, rfc3339(received_at), str(f.reading_id),
                      rfc3339(f.measured_at), f.sample_id, f.commodity, f.commodity_category, f.vendor_id,
                      f.certificate_no, f.lot_code, f.analyte, f.method.value, f.method_standard, f.strip_lot,
                      f.cutoff_ratio, f.c_line, f.t_line, f.inhibition_pct, f.device_result, f.operator_id,
                      f.firmware, f.region_code]
    return FACTS_HEADER, json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()


def _utc(text: object, name: str) -> datetime:
    if type(text) is not str:
        raise RecordError(f"rt_reading {name} is not a time")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"rt_reading {name} {text[:40]!r} is not a time") from None
    if value.tzinfo is None:
        raise RecordError(f"rt_reading {name} {text[:40]!r} has no offset")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _from_facts_header(blob: bytes) -> tuple[str, str, str, datetime, ReadingFacts]:
    try:
        row = json.loads(blob)
    except ValueError as exc:
        raise RecordError(f"header rt_reading is not JSON: {exc}") from None
    if type(row) is not list or len(row) != 5 + _N_FACTS or row[0] != FACTS_VERSION:
        raise RecordError(f"header rt_reading is not a version-{FACTS_VERSION} array of {5 + _N_FACTS} values")
    market_id, station_id, device_id = row[1], row[2], row[3]
    for name, value in (("market_id", market_id), ("station_id", station_id), ("device_id", device_id)):
        if type(value) is not str or not ID_RE.match(value):
            raise RecordError(f"rt_reading {name} {str(value)[:80]!r} is not an identifier")
    facts = row[5:]
    for i in _TEXT_FIELDS:
        if facts[i] is not None and type(facts[i]) is not str:
            raise RecordError(f"rt_reading field {ReadingFacts.__slots__[i]} is not text")
    for i in _REQUIRED_TEXT:
        if not facts[i]:
            raise RecordError(f"rt_reading lacks {ReadingFacts.__slots__[i]}")
    for i in _NUMBER_FIELDS:
        v = facts[i]
        if v is not None and (type(v) is not float and type(v) is not int):
            raise RecordError(f"rt_reading field {ReadingFacts.__slots__[i]} is not a number")
    try:
        facts[0] = UUID(facts[0])
        facts[9] = Method(facts[9])
    except (TypeError, ValueError, AttributeError):
        raise RecordError("rt_reading reading_id or method is not valid") from None
    facts[1] = _utc(facts[1], "measured_at")
    if facts[19] is None:
        facts[19] = ""
    return market_id, station_id, device_id, _utc(row[4], "received_at"), ReadingFacts(*facts)


@dataclass(frozen=True, slots=True)
class ReadingRecord:
    """A reading as consumed: the ids of record, when the bridge got it, its facts, the raw JSON."""

    market_id: str
    station_id: str
    device_id: str
    received_at: datetime
    facts: ReadingFacts
    raw: str

    @property
    def mqtt_topic(self) -> str:
        return reading_topic_of(self.market_id, self.station_id, self.device_id)

    @classmethod
    def from_kafka(cls, value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None) -> ReadingRecord:
        """Raises RecordError, or pydantic's ValidationError for a version-1 payload that is not a reading."""
        raw = (value or b"").decode("utf-8", "replace")
        for name, blob in headers or ():
            if name == FACTS_HEADER:
                market_id, station_id, device_id, received_at, facts = _from_facts_header(blob or b"")
                return cls(market_id, station_id, device_id, received_at, facts, raw)
        found = {name: (v or b"").decode("utf-8", "replace") for name, v in (headers or ()) if name in HEADER_NAMES}
        missing = [n for n in HEADER_NAMES if n not in found]
        if missing:
            raise RecordError(f"record lacks the headers {', '.join(missing)} (and has no rt_reading header)")
        for name in ("market_id", "station_id", "device_id"):
            if not ID_RE.match(found[name]):
                raise RecordError(f"header {name} {found[name][:80]!r} is not an identifier")
        try:
            received_at = datetime.fromisoformat(found["received_at"])
        except ValueError:
            raise RecordError(f"header received_at {found['received_at'][:40]!r} is not a time") from None
        return cls(found["market_id"], found["station_id"], found["device_id"], received_at,
                   ReadingFacts.of(Reading.model_validate_json(raw)), raw)


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
