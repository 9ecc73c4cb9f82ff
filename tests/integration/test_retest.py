"""A retest is a real reading of the same sample, and its server verdict decides (issue 9, defect 3):
MQTT in, the workflow through the API out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import encode, publish, reading_payload, reading_topic, scalar, wait_for

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
#: This module's own market: other sessions may publish to the same broker meanwhile.
M = f"mr{uuid.uuid4().hex[:8]}"
SUSPICIOUS, NEGATIVE, POSITIVE = (1000.0, 870.0), (1000.0, 1200.0), (1000.0, 300.0)


def _reading(lines: tuple[float, float], sample_id: str | None, minutes: float, market: str = M) -> dict:
    p = reading_payload(signal={"c_line": lines[0], "t_line": lines[1]})
    p["sample"] = {**p["sample"], "sample_id": sample_id}
    p["measured_at"] = (T0 + timedelta(minutes=minutes)).isoformat()
    p.pop("device_result")
    return {"payload": p, "market": market}


# (case, retest: None for a made-up id, else (lines, same sample_id?, minutes after the screen, market)),
# status, state after or the refusal's reason
CASES: list[tuple[str, Any, int, str]] = [
    ("made-up id", None, 422, "unknown"),
    ("same sample negative", (NEGATIVE, True, 10, M), 200, "released"),
    ("same sample positive", (POSITIVE, True, 10, M), 200, "sale_suspended"),
    ("same sample suspicious", (SUSPICIOUS, True, 10, M), 422, "suspicious"),
    ("measured before the screen", (NEGATIVE, True, -5, M), 422, "not_after"),
    ("same goods, no sample id, within the window", (NEGATIVE, False, 30, M), 200, "released"),
    ("same goods beyond the window", (NEGATIVE, False, 300, M), 422, "other_sample"),
]


def test_a_retest_by_a_real_and_by_a_made_up_reading(
    settings: Any, pipeline: Any, mqtt_broker: Any, api_client: Any
) -> None:
    pipeline("store", "flagger")
    dsn = settings.database_url
    screens, retests = [], []
    for n, (_, retest, _, _) in enumerate(CASES):
        sample = f"S-{n}"
        screens.append(_reading(SUSPICIOUS, sample, 0))
        if retest is not None:
            lines, same, minutes, market = retest
            retests.append(_reading(lines, sample if same else None, minutes, market))
        else:
            retests.append(None)
    sent = [r for r in screens + retests if r is not None]
    publish(mqtt_broker.url, mqtt_broker.protocol,
            [(reading_topic(r["market"]), encode(r["payload"])) for r in sent])
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM verdicts WHERE market_id = %s", [M]) == len(sent),
             what="all judged")
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM readings WHERE market_id = %s", [M]) == len(sent),
             what="all stored")

    for (case, _, status, outcome), screen, retest in zip(CASES, screens, retests, strict=True):
        failure = api_client.get("/v1/failures", params={"kind": "suspicious", "market_id": M}).json()["items"]
        (fid,) = [f["failure_id"] for f in failure if f["reading_id"] == screen["payload"]["reading_id"]]
        rid = retest["payload"]["reading_id"] if retest else str(uuid.uuid4())
        answer = api_client.post(f"/v1/failures/{fid}/actions", json={
            "action": "retest_negative", "note": "second strip", "evidence": {"retest_reading_id": rid}})
        assert answer.status_code == status, (case, answer.text)
        body = answer.json()
        if status == 200:
            assert body["state"] == outcome, case
            assert body["outcome"] == ("released_on_retest" if outcome == "released" else None), case
        else:
            assert body["error"]["code"] == "retest_refused" and body["error"]["details"]["reason"] == outcome, case
            assert api_client.get(f"/v1/failures/{fid}").json()["state"] == "screen_positive", case
