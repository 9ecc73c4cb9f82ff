"""What the bridge puts on Kafka, and how consumers read it back: a reading validated once.

A ``rt.readings.v1`` record (key: ``station_id``) carries the reading exactly
as the device published it as its value (validated JSON; unknown fields
kept).  The bridge, which validated it, also writes one header,
``rt_reading``: the ids of record from the MQTT topic,
``received_at``, and the reading's fields every consumer needs, already
normalised (UTC times, enum values, the optional ``region_code``) — its
:class:`ReadingFacts`.  Consumers read that header and never re-validate the
payload: one parse and validation per reading in the whole pipeline.  The
header's 25 values are joined by U+001F (no validated text holds a control
character), in the order of :func:`facts_header`; version ``1`` first.

A record without it (written by a bridge before this header existed, or by
another producer) still carries the five headers of version 1 (``market_id``,
``station_id``, ``device_id``, ``mqtt_topic``, ``received_at``) and is
validated in full, so a log written across an upgrade is read unchanged.
The header is checked for shape and types; what it cannot prove (a time, a
uuid, a number) the database's column types do, and a record either check
refuses is a dead letter with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, NamedTuple
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


def reading_headers(market_id: str, station_id: str, device_id: str, mqtt_topic: str,
                    received_at: datetime) -> list[tuple[str, bytes]]:
    """The version-1 headers (no compact form): consumers validate such a record's payload in full."""
    values = (market_id, station_id, device_id, mqtt_topic, rfc3339(received_at))
    return [(name, value.encode()) for name, value in zip(HEADER_NAMES, values, strict=True)]


def _region(value: object) -> str:
    """An optional origin region code a device may send (``region_code`` or ``sample.region_code``)."""
    text = str(value or "")[:64]
    return text if text.isprintable() else text.translate(_CONTROL)


class ReadingFacts(NamedTuple):
    """What the consumers need of a validated reading, normalised: times in UTC, enums as their values.
    (A named tuple: made for every reading, and a tuple is the cheapest immutable value to make.)"""

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
            r.firmware, _region(region),
        )


_N_FACTS = 20
_N_HEADER = 5 + _N_FACTS
_SEP = "\x1f"  # ASCII unit separator: no validated text can hold it (control characters are refused)
_CONTROL = dict.fromkeys(range(32), None)
_KNOWN_IDS: set[tuple[str, str, str]] = set()


def facts_header(market_id: str, station_id: str, device_id: str, received_at: datetime,
                 f: ReadingFacts) -> tuple[str, bytes]:
    """The ``rt_reading`` header of a reading the bridge validated: its values joined by U+001F,
    an empty value for none (no valid text is empty), numbers as Python writes them (exactly)."""
    c, t, i, k = f.cutoff_ratio, f.c_line, f.t_line, f.inhibition_pct
    return FACTS_HEADER, _SEP.join((
        "1", market_id, station_id, device_id,
        (received_at if received_at.tzinfo is UTC else received_at.astimezone(UTC)).isoformat(), str(f.reading_id),
        f.measured_at.isoformat(), f.sample_id or "", f.commodity, f.commodity_category or "", f.vendor_id or "",
        f.certificate_no or "", f.lot_code or "", f.analyte, f.method.value, f.method_standard or "", f.strip_lot,
        "" if c is None else repr(c), "" if t is None else repr(t), "" if i is None else repr(i),
        "" if k is None else repr(k), f.device_result or "", f.operator_id or "", f.firmware or "", f.region_code,
    )).encode()


def _utc(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"rt_reading {name} {text[:40]!r} is not a time") from None
    if value.tzinfo is None:
        raise RecordError(f"rt_reading {name} {text[:40]!r} has no offset")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _number(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RecordError(f"rt_reading {name} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordError(f"rt_reading {name} {text[:40]!r} is not a finite number")
    return value


def _from_facts_header(blob: bytes) -> tuple[str, str, str, datetime, ReadingFacts]:
    try:
        v = blob.decode("utf-8").split(_SEP)
    except UnicodeDecodeError:
        raise RecordError("header rt_reading is not UTF-8") from None
    if len(v) != _N_HEADER or v[0] != "1":
        raise RecordError(f"header rt_reading is not version 1 with {_N_HEADER} values")
    ids = (v[1], v[2], v[3])
    if ids not in _KNOWN_IDS:
        for name, value in zip(("market_id", "station_id", "device_id"), ids, strict=True):
            if not ID_RE.match(value):
                raise RecordError(f"rt_reading {name} {value[:80]!r} is not an identifier")
        if len(_KNOWN_IDS) < 100_000:  # a fleet's readers: each checked once
            _KNOWN_IDS.add(ids)
    for position, name in ((8, "commodity"), (13, "analyte"), (16, "strip_lot")):
        if not v[position]:
            raise RecordError(f"rt_reading lacks {name}")
    try:
        reading_id = UUID(v[5])
    except ValueError:
        raise RecordError(f"rt_reading reading_id {v[5][:40]!r} is not a uuid") from None
    try:
        method = Method(v[14])
    except ValueError:
        raise RecordError(f"rt_reading method {v[14][:40]!r} is not a method") from None
    facts = ReadingFacts(
        reading_id, _utc(v[6], "measured_at"), v[7] or None, v[8], v[9] or None, v[10] or None, v[11] or None,
        v[12] or None, v[13], method, v[15] or None, v[16], _number(v[17], "cutoff_ratio"),
        _number(v[18], "c_line"), _number(v[19], "t_line"), _number(v[20], "inhibition_pct"), v[21] or None,
        v[22] or None, v[23] or None, v[24],
    )
    return v[1], v[2], v[3], _utc(v[4], "received_at"), facts


class ReadingRecord(NamedTuple):
    """A reading as consumed: the ids of record, when the bridge got it, its facts, the raw JSON."""

    market_id: str
    station_id: str
    device_id: str
    received_at: datetime
    facts: ReadingFacts
    raw: str

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
