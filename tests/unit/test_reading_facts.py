"""A reading is validated once, in the bridge: its ``rt_reading`` header gives consumers exactly what
validating the payload again would (the version-1 path), and a header that is not the bridge's is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.components import fleet_messages
from consumers.records import parse_reading
from consumers.runner import PoisonRecord
from consumers.testing import record as consumer_record
from ingest.route import Accepted, route
from schemas.envelope import FACTS_HEADER, ReadingRecord, RecordError, reading_headers
from simulators.malformed import GOOD_TOPIC, valid_payload

NOW = datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)


def both_ways(topic: str, payload: bytes) -> tuple[ReadingRecord, ReadingRecord]:
    routed = route(topic, payload, NOW)
    assert isinstance(routed, Accepted), routed
    assert [name for name, _ in routed.headers] == [FACTS_HEADER]
    market, station, device = topic.split("/")[3:8:2]
    legacy = reading_headers(market, station, device, topic, NOW)
    return ReadingRecord.from_kafka(routed.value, routed.headers), ReadingRecord.from_kafka(payload, legacy)


def test_the_header_carries_what_validating_the_payload_gives_for_a_fleets_readings() -> None:
    messages = fleet_messages(2000, seed=7)
    for topic, payload in messages:
        compact, full = both_ways(topic, json.dumps(payload, ensure_ascii=False).encode())
        assert compact == full
        assert (compact.market_id, compact.station_id, compact.device_id) == tuple(topic.split("/")[3:8:2])


@pytest.mark.parametrize("change", [
    {"measured_at": "2026-11-28T08:15:03.5+08:00"},  # an offset, normalised to UTC
    {"region_code": "320412", "extra_field": {"kept": True}},
    {"device_result": None, "operator_id": None, "firmware": None},
    {"sample": {"commodity": "韭菜\u2028", "region_code": "320411"}},
    {"assay": {"analyte": "chlorpyrifos", "method": "enzyme_inhibition", "strip_lot": "EI-1"},
     "signal": {"inhibition_pct": 61}},
])
def test_edge_readings_agree_both_ways(change: dict[str, Any]) -> None:
    payload = {**valid_payload(), **change}
    compact, full = both_ways(GOOD_TOPIC, json.dumps(payload, ensure_ascii=False).encode())
    assert compact == full
    assert compact.facts.measured_at.tzinfo is UTC


SEP = "\x1f"


def _header(row: list[str]) -> list[tuple[str, bytes]]:
    return [(FACTS_HEADER, SEP.join(row).encode())]


def _good_row() -> list[str]:
    routed = route(GOOD_TOPIC, json.dumps(valid_payload()).encode(), NOW)
    assert isinstance(routed, Accepted)
    return routed.headers[0][1].decode().split(SEP)


@pytest.mark.parametrize(("position", "value", "says"), [
    (0, "2", "version 1"),
    (1, "bad id/", "market_id"),
    (4, "2026-11-28T01:02:03", "no offset"),
    (4, "yesterday", "not a time"),
    (5, "not-a-uuid", "reading_id"),
    (6, "1764000000", "measured_at"),
    (8, "", "commodity"),
    (14, "gold", "method"),
    (18, "1365.6x", "c_line"),
    (18, "nan", "c_line"),
    (19, "1e400", "t_line"),
])
def test_a_header_not_written_by_the_bridge_is_refused_with_its_reason(position: int, value: str, says: str) -> None:
    row = _good_row()
    row[position] = value
    with pytest.raises(RecordError, match=says):
        ReadingRecord.from_kafka(json.dumps(valid_payload()).encode(), _header(row))


def test_a_short_header_or_not_utf8_is_refused() -> None:
    with pytest.raises(RecordError, match="25 values"):
        ReadingRecord.from_kafka(b"{}", _header(_good_row()[:-1]))
    with pytest.raises(RecordError, match="UTF-8"):
        ReadingRecord.from_kafka(b"{}", [(FACTS_HEADER, b"1\x1f\xff")])


def test_a_region_code_cannot_break_the_header() -> None:
    payload = {**valid_payload(), "region_code": "32\x1f04\n12"}
    compact, full = both_ways(GOOD_TOPIC, json.dumps(payload).encode())
    assert compact == full and compact.facts.region_code == "320412"


def test_a_refused_header_becomes_a_dead_letter_not_a_crash() -> None:
    record = consumer_record("rt.readings.v1", b"{}", headers=[(FACTS_HEADER, b"{}")])
    with pytest.raises(PoisonRecord) as raised:
        parse_reading(record)
    assert raised.value.code == "not_a_reading_record" and "rt_reading" in raised.value.reason


def test_received_at_survives_to_the_microsecond() -> None:
    compact, _ = both_ways(GOOD_TOPIC, json.dumps(valid_payload()).encode())
    assert compact.received_at == NOW and compact.received_at.microsecond == 456789
