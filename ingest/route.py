"""The pure core of the bridge: ``(mqtt_topic, payload_bytes)`` → a Kafka record or a rejection.

No I/O here; the MQTT and Kafka adapters call :func:`route` for every message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from domain.chain import canonical_json, canonical_record
from schemas.certificate import parse_certificate
from schemas.common import ID_RE, describe_validation_error
from schemas.envelope import ReadingFacts, facts_header
from schemas.reading import MAX_PAYLOAD_BYTES, Reading

READING_TOPIC = re.compile(r"^rt/v1/markets/([^/]*)/stations/([^/]*)/devices/([^/]*)/readings$")
CERTIFICATE_TOPIC = re.compile(r"^rt/v1/markets/([^/]*)/entry/([^/]*)/certificates$")

# Dead-letter reason codes (stable; documented in the README).
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"
TOO_LARGE = "too_large"
INVALID_READING = "invalid_reading"
BAD_TOPIC = "bad_topic"
ID_MISMATCH = "id_mismatch"
INVALID_CERTIFICATE = "invalid_certificate"


@dataclass(frozen=True, slots=True)
class Accepted:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    reading_id: str  # or the certificate number, for a certificate
    kind: str = "reading"


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str
    reason: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_object(raw: bytes) -> dict[str, Any] | Rejected:
    """UTF-8 JSON object, strictly: no NaN/Infinity, no absurd nesting."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(NOT_UTF8, f"payload is not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return Rejected(NOT_JSON, "payload JSON is nested too deeply")
    except ValueError as exc:
        return Rejected(NOT_JSON, f"payload is not valid JSON: {exc}")
    if not isinstance(obj, dict):
        return Rejected(INVALID_READING, f"payload must be a JSON object, got a JSON {type(obj).__name__}")
    return obj


_KNOWN_TOPICS: dict[str, tuple[str, str, str]] = {}  # a fleet's few thousand topics, each parsed once
_KNOWN_TOPICS_MAX = 100_000


def parse_topic(mqtt_topic: str) -> tuple[str, str, str] | Rejected:
    known = _KNOWN_TOPICS.get(mqtt_topic)
    if known is not None:
        return known
    match = READING_TOPIC.match(mqtt_topic)
    if not match:
        return Rejected(
            BAD_TOPIC,
            f"topic {mqtt_topic[:200]!r} is not rt/v1/markets/{{market_id}}/stations/{{station_id}}"
            "/devices/{device_id}/readings",
        )
    ids = (match[1], match[2], match[3])
    for label, value in zip(("market_id", "station_id", "device_id"), ids, strict=True):
        if not ID_RE.match(value):
            return Rejected(BAD_TOPIC, f"topic {label} {value[:80]!r} must be 1-64 chars of [A-Za-z0-9._-]")
    if len(_KNOWN_TOPICS) < _KNOWN_TOPICS_MAX:
        _KNOWN_TOPICS[mqtt_topic] = ids
    return ids


def _has_non_finite_token(payload: bytes) -> bool:
    """Cheap pre-check: only a payload mentioning NaN/Infinity needs the strict parse."""
    return b"NaN" in payload or b"Infinity" in payload


def route(mqtt_topic: str, payload: bytes, received_at: datetime) -> Accepted | Rejected:
    """A reading (``…/readings``) or, from a market entry scanner, a certificate (``…/certificates``)."""
    if mqtt_topic.endswith("/certificates"):
        return route_certificate(mqtt_topic, payload)
    return route_reading(mqtt_topic, payload, received_at)


def route_certificate(mqtt_topic: str, payload: bytes) -> Accepted | Rejected:
    """A certificate record scanned at a market entry becomes a ``rt.certificates.v1`` record
    (the same canonical value ``POST /v1/certificates`` produces)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejected(TOO_LARGE, f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    match = CERTIFICATE_TOPIC.match(mqtt_topic)
    if not match or not all(ID_RE.match(level) for level in match.groups()):
        return Rejected(BAD_TOPIC, f"topic {mqtt_topic[:200]!r} is not rt/v1/markets/{{market_id}}/entry/"
                                   "{entry_id}/certificates with identifiers of [A-Za-z0-9._-]")
    obj = parse_json_object(payload)
    if isinstance(obj, Rejected):
        return obj
    try:
        record = parse_certificate(obj)
    except ValidationError as exc:
        return Rejected(INVALID_CERTIFICATE, describe_validation_error(exc))
    if record.location.market_id is not None and record.location.market_id != match[1]:
        return Rejected(ID_MISMATCH, f"payload location.market_id {record.location.market_id!r} disagrees with "
                                     f"topic market_id {match[1]!r}")
    return Accepted(key=record.certificate_no.encode(), value=canonical_json(canonical_record(record)),
                    headers=[("mqtt_topic", mqtt_topic.encode())], reading_id=record.certificate_no,
                    kind="certificate")


def route_reading(mqtt_topic: str, payload: bytes, received_at: datetime) -> Accepted | Rejected:
    """Validate one reading; an accepted one becomes a ``rt.readings.v1`` record.

    The record's value is the payload exactly as published; the ids of record and the reading's
    validated facts travel in one header (see :mod:`schemas.envelope`), so no consumer parses it again.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejected(TOO_LARGE, f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    ids = parse_topic(mqtt_topic)
    if isinstance(ids, Rejected):
        return ids
    try:
        reading = Reading.model_validate_json(payload)
    except ValidationError as exc:
        # the slow path names what is wrong: bytes, JSON, or the reading itself
        obj = parse_json_object(payload)
        if isinstance(obj, Rejected):
            return obj
        return Rejected(INVALID_READING, describe_validation_error(exc))
    if _has_non_finite_token(payload):
        strict = parse_json_object(payload)  # NaN/Infinity anywhere (even unknown fields) is not JSON
        if isinstance(strict, Rejected):
            return strict
    for label, topic_value in zip(("market_id", "station_id", "device_id"), ids, strict=True):
        payload_value = getattr(reading, label)
        if payload_value is not None and payload_value != topic_value:
            return Rejected(
                ID_MISMATCH, f"payload {label} {payload_value!r} disagrees with topic {label} {topic_value!r}"
            )
    header = facts_header(ids[0], ids[1], ids[2], received_at, ReadingFacts.of(reading))
    return Accepted(key=ids[1].encode(), value=payload, headers=[header], reading_id=str(reading.reading_id))
