"""False positives on record (issue 9, defect 2): MQTT in, the workflow through the API, outcomes and
rates out of failures, pass-rate statistics, devices and strip lots."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import encode, publish, reading_payload, reading_topic, scalar, wait_for

pytestmark = pytest.mark.integration

#: This module's own market: other sessions may publish to the same broker meanwhile.
M = f"mo{uuid.uuid4().hex[:8]}"
# per reader and lot: (device, strip lot, screen results then their lab outcomes, invalid strips, negatives)
READERS = [
    (f"{M}-d1", "LOT-A", ["lab_negative", "lab_negative", "lab_positive"], 1, 6),
    (f"{M}-d2", "LOT-B", ["lab_positive"], 0, 1),
]
# device (ids unique to this test: device_activity is keyed by the id alone) → (false positives,
# confirmed, false-positive rate, invalid rate)
EXPECTED = {
    f"{M}-d1": (2, 1, 0.666667, 0.1),
    f"{M}-d2": (0, 1, 0.0, 0.0),
}


def _reading(t_line: float, c_line: float, lot: str, at: datetime) -> dict[str, Any]:
    p = reading_payload(signal={"c_line": c_line, "t_line": t_line})
    p["assay"] = {**p["assay"], "strip_lot": lot}
    p["measured_at"] = at.isoformat()
    p.pop("device_result")
    return p


def test_lab_negative_release_is_a_false_positive_counted_per_group_reader_and_lot(
    settings: Any, pipeline: Any, mqtt_broker: Any, api_client: Any
) -> None:
    pipeline("store", "flagger")
    now = datetime.now(UTC).replace(microsecond=0)
    messages = []
    for device, lot, labs, invalid, negatives in READERS:
        strips = [_reading(300.0, 1000.0, lot, now) for _ in labs]
        strips += [_reading(900.0, 50.0, lot, now) for _ in range(invalid)]
        strips += [_reading(1200.0, 1000.0, lot, now) for _ in range(negatives)]
        messages += [(reading_topic(M, "s1", device), encode(p)) for p in strips]
    publish(mqtt_broker.url, mqtt_broker.protocol, messages)
    dsn = settings.database_url
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM verdicts WHERE market_id = %s", [M]) == len(messages),
             what="all judged")

    for device, _, labs, _, _ in READERS:
        params = {"kind": "positive", "device_id": device, "market_id": M}
        found = api_client.get("/v1/failures", params=params).json()["items"]
        assert len(found) == len(labs)
        for failure, lab in zip(found, labs, strict=True):
            fid = failure["failure_id"]
            assert api_client.post(f"/v1/failures/{fid}/actions",
                                   json={"action": "object", "note": "vendor objects"}).status_code == 200
            done = api_client.post(f"/v1/failures/{fid}/actions",
                                   json={"action": lab, "evidence": {"lab_report_no": "LAB-1"}})
            assert done.status_code == 200, done.text
            want = "false_positive" if lab == "lab_negative" else "confirmed"
            assert done.json()["outcome"] == want
    listed = api_client.get("/v1/failures", params={"outcome": "false_positive", "market_id": M}).json()["items"]
    assert len(listed) == 2 and {f["device_id"] for f in listed} == {f"{M}-d1"}

    span = {"market_id": M, "since": (now - timedelta(hours=2)).isoformat(),
            "until": (now + timedelta(hours=2)).isoformat()}
    stats = api_client.get("/v1/stats/pass-rate", params={"group_by": "market", "bucket": "day", **span}).json()
    assert sum(r["false_positives"] for r in stats["items"]) == 2
    assert sum(r["confirmed_positives"] for r in stats["items"]) == 2

    devices = {d["device_id"]: d for d in api_client.get("/v1/devices", params={"market_id": M}).json()["items"]}
    lots = {lot["strip_lot"]: lot for lot in api_client.get("/v1/strip-lots", params=span).json()["items"]}
    for device, lot, labs, invalid, negatives in READERS:
        fp, confirmed, fp_rate, invalid_rate = EXPECTED[device]
        for row in (devices[device], lots[lot]):
            assert (row["false_positives"], row["confirmed_positives"]) == (fp, confirmed), row
            assert row["false_positive_rate"] == fp_rate and row["invalid_rate"] == invalid_rate, row
            assert row["tests"] == len(labs) + invalid + negatives and row["invalid"] == invalid
