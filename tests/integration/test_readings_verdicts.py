"""Readings show the server's verdict beside the device's, and filter by either (issue 9, defect 5):
MQTT in, API out."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.helpers import encode, publish, reading_payload, reading_topic, scalar, wait_for

pytestmark = pytest.mark.integration

M = f"mv{uuid.uuid4().hex[:8]}"
# (c_line, t_line, device verdict) → server verdict, agrees
READINGS = [
    ((1000.0, 1200.0, "negative"), "negative", True),
    ((1000.0, 300.0, "negative"), "positive", False),  # a reader that calls a positive negative
    ((1000.0, 1200.0, "positive"), "negative", False),
    ((1000.0, 300.0, "positive"), "positive", True),
    ((50.0, 900.0, None), "invalid", None),  # no device verdict
]
# query → the indexes of READINGS it lists
FILTERS: list[tuple[dict[str, str], set[int]]] = [
    ({}, {0, 1, 2, 3, 4}),
    ({"verdict": "positive"}, {1, 3}),
    ({"verdict": "negative"}, {0, 2}),
    ({"verdict": "invalid"}, {4}),
    ({"device_result": "negative"}, {0, 1}),
    ({"result": "negative"}, {0, 1}),  # the old name: an alias of device_result
    ({"device_result": "positive", "verdict": "positive"}, {3}),
    ({"device_result": "positive", "verdict": "negative"}, {2}),
    ({"result": "positive", "device_result": "positive"}, {2, 3}),
]


def test_server_verdict_in_the_readings_list_and_both_filters(
    settings: Any, pipeline: Any, mqtt_broker: Any, api_client: Any
) -> None:
    pipeline("store", "flagger")
    sent = []
    for (c, t, device), _, _ in READINGS:
        p = reading_payload(signal={"c_line": c, "t_line": t}, device_result=device)
        if device is None:
            p.pop("device_result")
        sent.append(p)
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(M), encode(p)) for p in sent])
    wait_for(lambda: scalar(settings.database_url, "SELECT count(*) FROM verdicts WHERE market_id = %s", [M]) == 5,
             what="all judged")
    wait_for(lambda: len(api_client.get("/v1/readings", params={"market_id": M}).json()["items"]) == 5,
             what="all stored")
    index = {p["reading_id"]: i for i, p in enumerate(sent)}
    listed = api_client.get("/v1/readings", params={"market_id": M}).json()["items"]
    for row in listed:
        i = index[row["reading_id"]]
        (_, _, device), server, agrees = READINGS[i]
        assert (row["device_result"], row["server_result"], row["agrees"]) == (device, server, agrees), i
        one = api_client.get(f"/v1/readings/{row['reading_id']}").json()
        assert (one["server_result"], one["agrees"]) == (server, agrees) and one["thresholds_used"]["r_pos"] == 0.8
    for query, want in FILTERS:
        got = api_client.get("/v1/readings", params={"market_id": M, **query}).json()["items"]
        assert {index[r["reading_id"]] for r in got} == want, query
    clash = api_client.get("/v1/readings", params={"result": "positive", "device_result": "negative"})
    assert clash.status_code == 422 and clash.json()["error"]["code"] == "invalid_request"
