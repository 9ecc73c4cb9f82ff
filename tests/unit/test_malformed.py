"""Every malformed case fails exactly the check its dead-letter code names, and no other."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from paho.mqtt.client import topic_matches_sub
from pydantic import ValidationError

from ingest.route import Accepted, Rejected, route
from schemas.reading import Reading
from simulators.malformed import CODES, DEFAULT_FILTER, GOOD_TOPIC, MALFORMED_CASES, MalformedCase, valid_payload

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def schema_errors(raw: bytes) -> list[str] | None:
    """Dotted error locations, or None when the payload is a valid reading."""
    try:
        Reading.model_validate(json.loads(raw))
    except ValidationError as exc:
        return [".".join(str(part) for part in err["loc"]) for err in exc.errors()]
    return None


def test_the_valid_payload_passes_every_check() -> None:
    raw = json.dumps(valid_payload(), ensure_ascii=False).encode()
    assert isinstance(route(GOOD_TOPIC, raw, NOW), Accepted)


@pytest.mark.parametrize("case", MALFORMED_CASES, ids=lambda c: c.name)
def test_case_fails_exactly_its_own_check(case: MalformedCase) -> None:
    assert case.expected_code in CODES
    result = route(case.topic, case.payload_bytes, NOW)
    assert isinstance(result, Rejected), case.name
    assert result.code == case.expected_code, result.reason
    for field in case.fields:
        assert field in result.reason, (field, result.reason)


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
