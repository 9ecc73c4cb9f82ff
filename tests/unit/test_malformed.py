"""Every malformed case fails exactly the check its dead-letter code names, and no other."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from paho.mqtt.client import topic_matches_sub
from pydantic import ValidationError

from schemas.common import ID_RE
from schemas.reading import MAX_PAYLOAD_BYTES, Reading
from simulators.malformed import CODES, DEFAULT_FILTER, GOOD_TOPIC, MALFORMED_CASES, MalformedCase, valid_payload

TOPIC_RE = re.compile(r"^rt/v1/markets/([^/]*)/stations/([^/]*)/devices/([^/]*)/readings$")


def topic_ids(topic: str) -> tuple[str, str, str] | None:
    match = TOPIC_RE.match(topic)
    if match is None or not all(ID_RE.match(level) for level in match.groups()):
        return None
    return match.group(1), match.group(2), match.group(3)


def schema_errors(raw: bytes) -> list[str] | None:
    """Dotted error locations, or None when the payload is a valid reading."""
    try:
        Reading.model_validate(json.loads(raw))
    except ValidationError as exc:
        return [".".join(str(part) for part in err["loc"]) for err in exc.errors()]
    return None


def failing_checks(topic: str, raw: bytes) -> set[str]:
    """Every check the (topic, payload) fails, each named by its dead-letter code."""
    failed = set()
    ids = topic_ids(topic)
    if ids is None:
        failed.add("bad_topic")
    if len(raw) > MAX_PAYLOAD_BYTES:
        failed.add("too_large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return failed | {"not_utf8"}
    try:
        payload: Any = json.loads(text)
    except json.JSONDecodeError:
        return failed | {"not_json"}
    if schema_errors(raw) is not None:
        return failed | {"invalid_reading"}
    stated = (payload.get("market_id"), payload.get("station_id"), payload.get("device_id"))
    if ids is not None and any(s is not None and s != i for s, i in zip(stated, ids, strict=True)):
        failed.add("id_mismatch")
    return failed


def test_the_valid_payload_passes_every_check() -> None:
    raw = json.dumps(valid_payload(), ensure_ascii=False).encode()
    assert failing_checks(GOOD_TOPIC, raw) == set()


@pytest.mark.parametrize("case", MALFORMED_CASES, ids=lambda c: c.name)
def test_case_fails_exactly_its_own_check(case: MalformedCase) -> None:
    assert case.expected_code in CODES
    assert failing_checks(case.topic, case.payload_bytes) == {case.expected_code}


@pytest.mark.parametrize("case", [c for c in MALFORMED_CASES if c.fields], ids=lambda c: c.name)
def test_invalid_reading_names_the_bad_fields(case: MalformedCase) -> None:
    errors = schema_errors(case.payload_bytes)
    assert errors is not None
    for field in case.fields:
        assert any(loc == field or loc.startswith(field + ".") for loc in errors), (field, errors)


@pytest.mark.parametrize("case", MALFORMED_CASES, ids=lambda c: c.name)
def test_subscribed_says_whether_the_default_filter_sees_it(case: MalformedCase) -> None:
    assert topic_matches_sub(DEFAULT_FILTER, case.topic) is case.subscribed


def test_every_code_has_cases_and_every_case_is_distinct() -> None:
    assert {c.expected_code for c in MALFORMED_CASES} == set(CODES)
    assert len({c.name for c in MALFORMED_CASES}) == len(MALFORMED_CASES)
    ids = [json.loads(c.payload_bytes)["reading_id"] for c in MALFORMED_CASES
           if c.expected_code in ("bad_topic", "id_mismatch")]
    assert len(set(ids)) == len(ids)


def test_the_wrong_schema_case_changes_nothing_but_the_schema() -> None:
    case = next(c for c in MALFORMED_CASES if c.name == "wrong_schema")
    payload = json.loads(case.payload_bytes)
    assert payload["schema"] == "rt.reading/2"
    assert schema_errors(json.dumps({**payload, "schema": "rt.reading/1"}).encode()) is None
