"""Hostile input over HTTP and MQTT: SQL metacharacters, oversized bodies, deep nesting,
invalid UTF-8, NaN and huge numbers. Nothing may crash or answer 5xx; over MQTT every
invalid message becomes a dead letter with a reason and every valid one is stored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from api.app import create_app
from schemas.settings import Settings
from storage.db import connect
from storage.tokens import issue_token
from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration

SQL_META = ["'", "' OR '1'='1", "'; DROP TABLE readings; --", '"', "\\", "%", "%s", "%(x)s", "_", "$$", "\x00",
            "' UNION SELECT token_sha256 FROM api_tokens --", "1; SELECT pg_sleep(10)", "*/ --", "韭菜'--"]


def assert_error_shape(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    conn = connect(settings.database_url or "")
    try:
        token = issue_token(conn, name="hostile", role="regulator", rate_per_minute=1_000_000, actor="test").token
        conn.commit()
    finally:
        conn.close()
    app = create_app(settings.with_overrides(api_auth=True))
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


# ---------------------------------------------------------------- HTTP


@pytest.mark.parametrize("value", SQL_META)
def test_sql_metacharacters_in_queries_and_paths(client: TestClient, settings: Settings, value: str) -> None:
    dsn = settings.database_url or ""
    before = scalar(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    for path, params in (
        ("/v1/readings", {"commodity": value}), ("/v1/readings", {"market_id": value}),
        ("/v1/failures", {"commodity": value}), ("/v1/deadletters", {"code": value}),
        ("/v1/admin/audit", {"actor": value, "target": value}), ("/v1/devices", {"station_id": value}),
        ("/v1/stats/pass-rate", {"tz": value}), ("/v1/readings", {"cursor": value}),
    ):
        response = client.get(path, params=params)
        assert_error_shape(response)
        if response.status_code == 200:
            assert response.json()["items"] == [], (path, params)
    quoted = quote(value, safe="")  # a client sends a NUL or a slash in a path segment percent-encoded
    for path in (f"/v1/certificates/{quoted}", f"/v1/certificates/{quoted}/trace", f"/v1/failures/{quoted}"):
        assert_error_shape(client.get(path))
    token = client.post("/v1/admin/tokens", json={"name": value, "role": "producer", "holder_id": "h1"})
    assert_error_shape(token)
    if "\x00" not in value:
        assert token.status_code == 201 and token.json()["name"] == value.strip()
    assert scalar(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == before


def test_oversized_bodies_are_refused(client: TestClient) -> None:
    big = {"records": [{"schema": "rt.certificate/1", "certificate_no": f"N{i}", "pad": "x" * 1000}
                       for i in range(5000)]}
    response = client.post("/v1/certificates", json=big)
    assert_error_shape(response)
    assert response.status_code in (413, 422)
    huge_name = client.post("/v1/admin/tokens", json={"name": "x" * 1_000_000, "role": "regulator"})
    assert_error_shape(huge_name)
    assert huge_name.status_code in (413, 422)


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
def test_deeply_nested_json(client: TestClient, depth: int) -> None:
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        for path in ("/v1/certificates", "/v1/admin/tokens", "/v1/admin/devices"):
            response = client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
            assert_error_shape(response)
            assert 400 <= response.status_code < 500


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd", b'{"name": "\xc3\x28", "role": "regulator"}', b"\xed\xa0\x80",
                                 b'{"name": "ok\x00", "role": "regulator"}', b"", b"null", b"\"\\ud800\""])
def test_invalid_utf8_and_odd_bodies(client: TestClient, raw: bytes) -> None:
    for path in ("/v1/certificates", "/v1/admin/tokens", "/v1/admin/devices"):
        response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert_error_shape(response)
        assert response.status_code in (400, 413, 415, 422)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5000, "1" + "0" * 400,
                                    "-0", "1e-400"])
def test_nan_and_huge_numbers_in_bodies_and_queries(client: TestClient, number: str) -> None:
    cert = json.dumps({"schema": "rt.certificate/1", "certificate_no": "HGZ-N-1", "kind": "origin",
                       "issued_at": "2026-11-27T17:40:00+08:00", "product": {"name": "x", "category": "vegetable"},
                       "quantity": {"value": 0, "unit": "kg"}, "holder": {"id": "h1", "name": "h", "role": "producer"},
                       "location": {"market_id": None, "stall_id": None}, "parents": []})
    bodies = {
        "/v1/certificates": cert.replace('"value": 0', f'"value": {number}'),
        "/v1/admin/tokens": f'{{"name": "n", "role": "regulator", "rate_per_minute": {number}}}',
    }
    for path, body in bodies.items():
        response = client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
        assert_error_shape(response)
        if number not in ("-0", "1e-400") or path == "/v1/admin/tokens":
            assert 400 <= response.status_code < 500, (path, number, response.text[:200])
    for path, param in (("/v1/readings", "limit"), ("/v1/failures", "limit"), ("/v1/stats/pass-rate", "limit"),
                        ("/v1/certificates/HGZ-N-1/trace", "max_depth"), ("/v1/deadletters", "limit")):
        assert_error_shape(client.get(path, params={param: number}))


# ---------------------------------------------------------------- MQTT


def _hostile_payloads() -> list[tuple[str, bytes]]:
    """(name, payload) pairs the bridge must dead-letter."""
    valid = encode(reading_payload())
    nan = reading_payload()
    return [
        ("invalid utf-8", b'{"schema": "rt.reading/1", "x": "\xc3\x28"}'),
        ("utf-16", json.dumps(reading_payload()).encode("utf-16")),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
        ("deep object", b'{"a":' * 5000 + b"1" + b"}" * 5000),
        ("NaN line", encode(nan).replace(b'"t_line": 1502.0', b'"t_line": NaN')),
        ("Infinity line", valid.replace(b'"c_line": 1532.0', b'"c_line": Infinity')),
        ("huge float", valid.replace(b'"c_line": 1532.0', b'"c_line": 1e400')),
        ("huge int", valid.replace(b'"c_line": 1532.0', b'"c_line": ' + b"9" * 5000)),
        ("negative line", valid.replace(b'"c_line": 1532.0', b'"c_line": -1')),
        ("oversized", encode(reading_payload(padding="x" * 20_000))),
        ("NUL bytes", b"\x00" * 64),
        ("not json", b"'; DROP TABLE readings; --"),
    ]


def test_hostile_mqtt_payloads_become_dead_letters(settings: Settings, pipeline: Any, mqtt_broker: Any) -> None:
    pipeline("store", "deadletters")
    hostile = _hostile_payloads()
    sql_text = reading_payload(sample={"commodity": "韭菜'); DROP TABLE readings; --", "vendor_id": "stall-1"})
    after = reading_payload()
    messages = [(reading_topic("m1", "s1", "d1"), payload) for _, payload in hostile]
    messages += [(reading_topic("m1", "s1", "d1"), encode(sql_text)), (reading_topic("m1", "s1", "d1"), encode(after))]
    publish(mqtt_broker.url, mqtt_broker.protocol, messages)

    dsn = settings.database_url or ""
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM readings") == 2, what="the two valid readings")
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM deadletters") >= len(hostile), what="every dead letter")
    stored = rows(dsn, "SELECT raw, code, reason FROM deadletters")
    assert len(stored) == len(hostile)
    by_raw = {bytes(raw): (code, reason) for raw, code, reason in stored}
    for name, payload in hostile:
        assert payload in by_raw, f"{name}: not dead-lettered with its raw bytes"
        code, reason = by_raw[payload]
        assert code and reason, name
    commodity = scalar(dsn, "SELECT commodity FROM readings WHERE reading_id = %s", [sql_text["reading_id"]])
    assert commodity == "韭菜'); DROP TABLE readings; --"


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=20))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=12)


def _mutations() -> st.SearchStrategy[bytes]:
    """A valid reading with one field replaced by arbitrary JSON, or arbitrary bytes."""
    fields = ["schema", "reading_id", "measured_at", "sample", "assay", "signal", "device_result", "firmware"]

    def mutate(field: str, value: Any) -> bytes:
        payload = reading_payload(reading_id=str(uuid.uuid4()))
        payload[field] = value
        return json.dumps(payload, allow_nan=True).encode()

    return st.one_of(st.builds(mutate, st.sampled_from(fields), JSON_VALUE), st.binary(max_size=300))


def test_fuzzed_mqtt_payloads_lose_nothing(settings: Settings, pipeline: Any, mqtt_broker: Any) -> None:
    """Hypothesis-made payloads through the real bridge: each one is a reading or a dead letter, never lost."""
    pipeline("store", "deadletters")
    batch: list[bytes] = []

    @given(payload=_mutations())
    @hypothesis_settings(max_examples=150, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))
    def collect(payload: bytes) -> None:
        batch.append(payload)

    collect()
    unique = list(dict.fromkeys(batch))
    marker = reading_payload()
    publish(mqtt_broker.url, mqtt_broker.protocol,
            [(reading_topic("m9", "s9", "d9"), p) for p in unique] + [(reading_topic("m9", "s9", "d9"),
                                                                     encode(marker))])
    dsn = settings.database_url or ""

    def accounted() -> int:
        return int(scalar(dsn, "SELECT (SELECT count(*) FROM readings) + (SELECT count(*) FROM deadletters)"))

    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM readings WHERE reading_id = %s",
                            [marker["reading_id"]]) == 1, what="the marker reading")
    # Each distinct payload is exactly one reading or one dead letter: none lost, none doubled.
    expected = len({_reading_key(p) for p in unique}) + 1
    wait_for(lambda: accounted() >= expected, timeout=60, what=f"{len(unique)} payloads accounted for")
    time.sleep(1.0)
    assert accounted() == expected
    reasons = rows(dsn, "SELECT code, reason FROM deadletters")
    assert reasons and all(code and reason for code, reason in reasons)
    assert scalar(dsn, "SELECT count(*) FROM readings") >= 2  # some mutations are still valid readings


def _reading_key(payload: bytes) -> bytes:
    """Payloads that are the same reading (same reading_id) are stored once."""
    try:
        value = json.loads(payload)
        if isinstance(value, dict) and isinstance(value.get("reading_id"), str):
            return str(uuid.UUID(value["reading_id"])).encode()
    except (ValueError, RecursionError, AttributeError):
        pass
    return payload


def test_nul_and_control_characters_in_certificate_text(client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL: such a record must be refused here, not poison the chain consumer."""
    for bad in ("leek\u0000", "leek\u0007", "\u0000"):
        body = {"schema": "rt.certificate/1", "certificate_no": "HGZ-NUL-1", "kind": "origin",
                "issued_at": "2026-11-27T17:40:00+08:00", "product": {"name": bad, "category": "vegetable"},
                "quantity": {"value": 5, "unit": "kg"}, "holder": {"id": "h1", "name": bad, "role": "producer"},
                "location": {"market_id": None, "stall_id": None}, "parents": []}
        response = client.post("/v1/certificates", json=body)
        assert_error_shape(response)
        assert response.status_code == 422, (bad, response.text[:200])
