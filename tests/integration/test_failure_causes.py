"""One open failure per cause (issue 9, defect 4): MQTT in, failures and their pages out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import encode, publish, reading_payload, reading_topic, scalar, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
#: This module's own market: other sessions may publish to the same broker meanwhile.
M = f"mc{uuid.uuid4().hex[:8]}"


def _reading(minute: int, t_line: float = 1200.0, device_result: str = "negative", cutoff: float = 0.6) -> dict:
    p = reading_payload(signal={"c_line": 1000.0, "t_line": t_line}, device_result=device_result)
    p["assay"] = {**p["assay"], "cutoff_ratio": cutoff}
    p["measured_at"] = (T0 + timedelta(minutes=minute)).isoformat()
    return p


def _failures(api: Any, **params: Any) -> list[dict[str, Any]]:
    return api.get("/v1/failures", params={"limit": 1000, "market_id": M, **params}).json()["items"]


def test_fifty_readings_of_a_misconfigured_reader_are_one_failure_and_recurrence_after_closing_a_new_one(
    settings: Any, pipeline: Any, mqtt_broker: Any, api_client: Any
) -> None:
    pipeline("store", "flagger")
    dsn = settings.database_url
    first, second = [_reading(i) for i in range(30)], [_reading(i) for i in range(30, 50)]
    disagreeing_positive = _reading(55, t_line=300.0, device_result="negative", cutoff=0.8)
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(M, "s1", f"{M}-d1"), encode(p)) for p in first])
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM verdicts WHERE market_id = %s", [M]) == 30, timeout=60,
             what="the first 30 judged")
    publish(mqtt_broker.url, mqtt_broker.protocol,
            [(reading_topic(M, "s1", f"{M}-d1"), encode(p)) for p in [*second, disagreeing_positive]])
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM verdicts WHERE market_id = %s", [M]) == 51, what="51 judged")

    # (kind, how many failures, occurrences of each)
    expected = [("cutoff_mismatch", 1, 50), ("positive", 1, 1), ("verdict_mismatch", 0, None)]
    for kind, count, occurrences in expected:
        found = _failures(api_client, kind=kind)
        assert len(found) == count, (kind, found)
        if count:
            assert found[0]["occurrences"] == occurrences, kind
    (cut,) = _failures(api_client, kind="cutoff_mismatch")
    assert cut["first_seen"].startswith("2026-11-28T02:00:00") and cut["last_seen"].startswith("2026-11-28T02:49:00")
    page = api_client.get(f"/v1/failures/{cut['failure_id']}").json()
    assert len(page["readings"]) == 20  # the newest readings of the cause
    assert page["readings"][0]["reading_id"] == second[-1]["reading_id"]
    assert all(r["device_cutoff"] == 0.6 for r in page["readings"])
    (positive,) = _failures(api_client, kind="positive")
    assert api_client.get(f"/v1/failures/{positive['failure_id']}").json()["details"]["device_result"] == "negative"

    for action in ("acknowledge", "resolve"):
        answer = api_client.post(f"/v1/failures/{cut['failure_id']}/actions",
                                 json={"action": action, "note": "cut-off set to the registry's"})
        assert answer.status_code == 200, answer.text
    again = _reading(60)
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(M, "s1", f"{M}-d1"), encode(again))])
    wait_for(lambda: len(_failures(api_client, kind="cutoff_mismatch")) == 2, what="a new failure after closing")
    newest, closed = _failures(api_client, kind="cutoff_mismatch")
    assert newest["occurrences"] == 1 and newest["reading_id"] == again["reading_id"] and newest["closed_at"] is None
    assert closed["failure_id"] == cut["failure_id"] and closed["occurrences"] == 50
