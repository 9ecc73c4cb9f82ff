"""Market entry scanners publish certificates over MQTT; they reach the chain like POSTed ones."""

from __future__ import annotations

import json

import pytest

from tests.helpers import publish, rows, scalar, wait_for

pytestmark = pytest.mark.integration


def certificate(no: str, market_id: str | None = None) -> bytes:
    return json.dumps({
        "schema": "rt.certificate/1",
        "certificate_no": no,
        "kind": "origin",
        "issued_at": "2026-11-27T17:40:00+08:00",
        "product": {"name": "韭菜", "category": "vegetable"},
        "quantity": {"value": 500, "unit": "kg"},
        "lot_code": "L20261127-03",
        "holder": {"id": "coop-wj-0031", "name": "武进合作社", "role": "producer"},
        "origin": {"region_code": "320412", "place": "嘉泽镇"},
        "commitment_basis": ["self_test"],
        "location": {"market_id": market_id, "stall_id": None},
        "parents": [],
    }, ensure_ascii=False).encode()


def test_certificate_scanned_at_entry_is_stored_and_a_wrong_market_is_a_dead_letter(
    settings, pipeline, mqtt_broker, api_client
):
    pipeline("chain", "deadletters")
    publish(mqtt_broker.url, mqtt_broker.protocol, [
        ("rt/v1/markets/M07/entry/gate-1/certificates", certificate("HGZ-MQTT-1")),
        ("rt/v1/markets/M07/entry/gate-1/certificates", certificate("HGZ-MQTT-2", market_id="M99")),
        ("rt/v1/markets/M07/entry/gate-1/certificates", b'{"schema": "rt.certificate/1"}'),
    ])
    found = wait_for(lambda: api_client.get("/v1/certificates/HGZ-MQTT-1").status_code == 200, what="the record")
    assert found
    body = api_client.get("/v1/certificates/HGZ-MQTT-1").json()
    assert body["certificate_no"] == "HGZ-MQTT-1" and len(body["digest"]) == 64
    wait_for(lambda: scalar(settings.database_url, "SELECT count(*) FROM deadletters") == 2, what="2 dead letters")
    codes = sorted(r[0] for r in rows(settings.database_url, "SELECT code FROM deadletters"))
    assert codes == ["id_mismatch", "invalid_certificate"]
    assert api_client.get("/v1/certificates/HGZ-MQTT-2").status_code == 404
