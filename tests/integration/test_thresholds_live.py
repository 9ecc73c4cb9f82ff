"""A threshold registered through the API judges the next reading (issue 9, defect 1): API in, MQTT in, API out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import encode, publish, reading_payload, reading_topic, wait_for

pytestmark = pytest.mark.integration

# (measured this long after the new version's valid_from, verdict, layers used); T/C is 0.40 throughout:
# project r_pos 0.80 → positive; the lot's r_pos 0.20 / r_neg 0.30 → negative.
CASES = [
    (timedelta(seconds=1), "negative", ["project", "strip_lot"]),
    (timedelta(seconds=-1), "positive", ["project"]),  # measured before the change, arrives after it
]


def test_a_new_threshold_judges_a_reading_measured_a_second_later(
    settings: Any, pipeline: Any, mqtt_broker: Any, api_client: Any
) -> None:
    pipeline("store", "flagger")
    warm = reading_payload()  # the flagger has loaded (and cached) the registry before the change
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(), encode(warm))])
    wait_for(lambda: api_client.get(f"/v1/readings/{warm['reading_id']}").json().get("server_result"),
             what="the first reading judged")
    valid_from = datetime.now(UTC)
    created = api_client.post("/v1/thresholds", json={
        "scope": "strip_lot", "analyte": "chlorpyrifos", "strip_lot": "LOT-X", "valid_from": valid_from.isoformat(),
        "params": {"r_pos": 0.20, "r_neg": 0.30}})
    assert created.status_code == 201, created.text
    sent = []
    for offset, _, _ in CASES:
        p = reading_payload(signal={"c_line": 1000.0, "t_line": 400.0}, device_result=None)
        p["assay"] = {**p["assay"], "strip_lot": "LOT-X", "cutoff_ratio": None}
        p["measured_at"] = (valid_from + offset).isoformat()
        sent.append(p)
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(), encode(p)) for p in sent])
    for p, (offset, verdict, layers) in zip(sent, CASES, strict=True):
        rid = p["reading_id"]
        got = wait_for(lambda rid=rid: api_client.get(f"/v1/readings/{rid}").json().get("server_result") and
                       api_client.get(f"/v1/readings/{rid}").json(), what=f"reading {offset} judged")
        assert got["server_result"] == verdict, offset
        assert got["thresholds_used"]["layers"] == layers, offset
