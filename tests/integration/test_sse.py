"""The live failure feed: Server-Sent Events, Last-Event-ID resume, market scope, MQTT → SSE latency."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.deps import Principal
from consumers.flagger import Flagger
from schemas.settings import Settings
from tests.helpers import encode, publish, reading_topic
from tests.integration import test_failures as tf
from tests.integration.test_failures import OPERATOR, OTHER_OPERATOR, REGULATOR, Clock, payload, record, run_batch

pytestmark = pytest.mark.integration

# shared fixtures
client = tf.client
clock = tf.clock
db_settings = tf.db_settings


def read_events(tc: TestClient, headers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    """Parse the SSE messages of one bounded stream request."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with tc.stream("GET", "/v1/failures/stream", params=params, headers=headers or {}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if not line:
                if "data" in current:
                    events.append(current)
                current = {}
            elif line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
    return events


def test_resume_with_last_event_id(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    flagger = Flagger(db_settings, clock=clock)
    run_batch(
        flagger,
        db_dsn,
        [record(payload(1000.0, 100.0, "positive")), record(payload(1000.0, 870.0, "suspicious"), offset=1)],
    )
    tc = client(OPERATOR)
    first = read_events(tc, {"Last-Event-ID": "0"}, max_events=3)
    assert [e["id"] for e in first] == [1, 2, 3]
    assert [e["event"] for e in first] == ["failure_raised", "failure_changed", "failure_raised"]
    assert first[1]["data"]["to_state"] == "sale_suspended" and first[0]["data"]["market_id"] == "m1"
    fid = first[2]["data"]["failure_id"]
    answer = tc.post(f"/v1/failures/{fid}/actions", json={"action": "suspend_sale"})
    assert answer.status_code == 200, answer.text
    resumed = read_events(tc, {"Last-Event-ID": "2"}, max_events=2)
    assert [e["id"] for e in resumed] == [3, 4]
    assert resumed[1]["data"]["action"] == "suspend_sale" and resumed[1]["data"]["failure_id"] == fid
    assert [e["id"] for e in read_events(tc, last_event_id=3, max_events=1)] == [4]  # query form
    assert read_events(client(OTHER_OPERATOR), {"Last-Event-ID": "0"}, timeout_s=0.5) == []  # scope


def test_new_failures_arrive_live(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    flagger = Flagger(db_settings, clock=clock)
    run_batch(flagger, db_dsn, [record(payload(50.0, 100.0, "invalid"))])  # before connecting: not replayed
    tc = client(REGULATOR)
    got: list[list[dict[str, Any]]] = []
    reader = threading.Thread(target=lambda: got.append(read_events(tc, max_events=1, timeout_s=10)))
    reader.start()
    time.sleep(0.5)
    run_batch(flagger, db_dsn, [record(payload(1000.0, 100.0, "positive"), offset=1)])
    reader.join(15)
    assert got and [e["data"]["kind"] for e in got[0]] == ["positive"]


def test_mqtt_positive_reaches_the_stream(settings: Settings, pipeline: Any, api_client: TestClient) -> None:
    pipeline("flagger")
    got: list[list[dict[str, Any]]] = []
    reader = threading.Thread(target=lambda: got.append(read_events(api_client, max_events=1, timeout_s=30)))
    reader.start()
    time.sleep(0.5)
    sent = time.monotonic()
    publish(settings.mqtt_url or "", settings.mqtt_protocol, [(reading_topic(), encode(payload(1000.0, 10.0)))])
    reader.join(40)
    latency = time.monotonic() - sent
    assert got and got[0] and got[0][0]["data"]["kind"] == "positive"
    assert latency < 10, f"MQTT → SSE took {latency:.2f}s"
