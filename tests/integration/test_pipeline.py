"""The walking skeleton through real components: MQTT in, rows and API answers out."""

from __future__ import annotations

import uuid

import pytest

from simulators.malformed import MALFORMED_CASES, case_reading_id
from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration


def _count(dsn: str, reading_id: str) -> int:
    return int(scalar(dsn, "SELECT count(*) FROM readings WHERE reading_id = %s", [reading_id]))


def test_valid_reading_arrives_once_with_ids_from_topic(settings, pipeline, mqtt_broker, api_client):
    pipeline("store")
    payload = reading_payload(extra_vendor_field={"kept": True})
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic("m7", "s7", "d7"), encode(payload))])

    wait_for(lambda: _count(settings.database_url, payload["reading_id"]) == 1, what="the reading row")
    (market, station, device, measured_at, raw) = rows(
        settings.database_url,
        "SELECT market_id, station_id, device_id, measured_at, raw FROM readings WHERE reading_id = %s",
        [payload["reading_id"]],
    )[0]
    assert (market, station, device) == ("m7", "s7", "d7")
    assert measured_at.isoformat() == "2026-11-28T00:15:03+00:00"  # stored in UTC
    assert raw["extra_vendor_field"] == {"kept": True}  # unknown fields kept

    page = api_client.get("/v1/readings", params={"market_id": "m7"}).json()
    assert [r["reading_id"] for r in page["items"]] == [payload["reading_id"]]
    assert page["items"][0]["c_line"] == 1532.0


def test_same_reading_id_twice_is_one_row(settings, pipeline, mqtt_broker):
    pipeline("store")
    payload = reading_payload()
    marker = reading_payload()
    message = (reading_topic(), encode(payload))
    publish(mqtt_broker.url, mqtt_broker.protocol, [message, message, (reading_topic(), encode(marker)), message])

    wait_for(lambda: _count(settings.database_url, marker["reading_id"]) == 1, what="the marker reading")
    wait_for(lambda: _count(settings.database_url, payload["reading_id"]) >= 1, what="the duplicated reading")
    assert _count(settings.database_url, payload["reading_id"]) == 1


def test_every_malformed_class_is_a_dead_letter_with_its_reason_and_the_bridge_keeps_going(
    settings, pipeline, mqtt_broker, api_client
):
    pipeline("store", "deadletters")
    cases = [c for c in MALFORMED_CASES if c.subscribed]
    after = reading_payload()
    publish(
        mqtt_broker.url,
        mqtt_broker.protocol,
        [(c.topic, c.payload_bytes) for c in cases] + [(reading_topic(), encode(after))],
    )
    # the bridge is still alive: the valid reading sent after all the bad input is stored
    wait_for(lambda: _count(settings.database_url, after["reading_id"]) == 1, what="the reading after bad input")
    wait_for(
        lambda: scalar(settings.database_url, "SELECT count(*) FROM deadletters") >= len(cases),
        what=f"{len(cases)} dead letters",
    )
    stored = rows(settings.database_url, "SELECT source_topic, code, reason, raw FROM deadletters")
    assert len(stored) == len(cases)
    by_raw = {(bytes(r[3]), r[0]): (r[1], r[2]) for r in stored}
    for case in cases:
        code, reason = by_raw[(case.payload_bytes, case.topic)]
        assert code == case.expected_code, case.name
        assert reason, case.name
        for field in case.fields:
            assert field in reason, (case.name, reason)
    stored_ids = {r[0] for r in rows(settings.database_url, "SELECT reading_id::text FROM readings")}
    assert not stored_ids & {case_reading_id(c.name) for c in cases}, "a malformed reading was stored"

    listed = api_client.get("/v1/deadletters", params={"code": "id_mismatch"}).json()["items"]
    assert {d["code"] for d in listed} == {"id_mismatch"}
    assert all("disagrees with topic" in d["reason"] for d in listed)


def test_topic_payload_id_mismatch_is_rejected(settings, pipeline, mqtt_broker):
    pipeline("store", "deadletters")
    payload = reading_payload(device_id="d2")
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(device="d1"), encode(payload))])
    wait_for(lambda: scalar(settings.database_url, "SELECT count(*) FROM deadletters") == 1, what="dead letter")
    code, reason = rows(settings.database_url, "SELECT code, reason FROM deadletters")[0]
    assert code == "id_mismatch"
    assert "'d2'" in reason and "'d1'" in reason
    assert _count(settings.database_url, payload["reading_id"]) == 0


def test_readings_api_filters_and_paginates_without_gaps(settings, pipeline, mqtt_broker, api_client):
    pipeline("store")
    payloads = [
        reading_payload(measured_at=f"2026-11-28T08:{minute:02d}:00+08:00", reading_id=str(uuid.uuid4()))
        for minute in range(25)
    ]
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic("mp", "sp", "dp"), encode(p)) for p in payloads])
    wait_for(lambda: scalar(settings.database_url, "SELECT count(*) FROM readings") == 25, what="25 rows")

    seen, cursor = [], None
    while True:
        params = {"market_id": "mp", "limit": 7, **({"cursor": cursor} if cursor else {})}
        body = api_client.get("/v1/readings", params=params).json()
        seen += [r["reading_id"] for r in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25 and set(seen) == {p["reading_id"] for p in payloads}
    assert api_client.get("/v1/readings", params={"market_id": "other"}).json()["items"] == []
    since = api_client.get("/v1/readings", params={"since": "2026-11-28T08:20:00+08:00"}).json()["items"]
    assert len(since) == 5


def test_bad_api_requests_get_json_errors(api_client):
    for params in ({"limit": 0}, {"since": "yesterday"}, {"since": "2026-11-28T08:00:00"}, {"result": "pass"},
                   {"cursor": "!!!"}, {"market_id": "bad id"}):
        response = api_client.get("/v1/readings", params=params)
        assert 400 <= response.status_code < 500, params
        body = response.json()
        assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], params
    missing = api_client.get("/v1/readings/" + str(uuid.uuid4()))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_healthz_and_metrics(api_client):
    health = api_client.get("/healthz")
    assert health.status_code == 200
    deps = health.json()["dependencies"]
    assert deps["database"]["state"] == "up" and deps["kafka"]["state"] == "up"
    metrics = api_client.get("/metrics")
    assert metrics.status_code == 200
    assert "rt_readings_stored 0.0" in metrics.text  # a fresh database: counted exactly


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_bridge_speaks_mqtt_311_and_5(settings, pipeline, mqtt_broker, protocol):
    if mqtt_broker.amqtt and protocol == "5":
        pytest.skip("amqtt speaks MQTT 3.1.1 only")
    s = settings.with_overrides(mqtt_protocol=protocol)
    pipeline("store", settings_override=s)
    payload = reading_payload()
    publish(mqtt_broker.url, protocol, [(reading_topic(), encode(payload))])
    wait_for(lambda: _count(s.database_url, payload["reading_id"]) == 1, what=f"a reading over MQTT {protocol}")


def test_readings_with_and_without_mqtt5_properties_and_at_qos_0_all_arrive(settings, pipeline, mqtt_broker):
    """The bridge's lean path takes QoS 1 packets without properties; paho's own path the rest."""
    if mqtt_broker.amqtt:
        pytest.skip("amqtt speaks MQTT 3.1.1 only")
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from schemas.mqtt_url import parse_mqtt_url

    s = settings.with_overrides(mqtt_protocol="5")
    pipeline("store", "deadletters", settings_override=s)
    plain, with_props, qos0 = reading_payload(), reading_payload(), reading_payload()
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = 3600
    props.UserProperty = ("origin", "test")
    malformed = f"{{not json {uuid.uuid4()}".encode()  # its own bytes: other sessions may share the broker
    address = parse_mqtt_url(mqtt_broker.url)
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="test-props",
                         protocol=mqtt.MQTTv5)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        infos = [client.publish(reading_topic(), encode(plain), qos=1),
                 client.publish(reading_topic(), encode(with_props), qos=1, properties=props),
                 client.publish(reading_topic(), encode(qos0), qos=0),
                 client.publish(reading_topic(), malformed, qos=1, properties=props)]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    for p in (plain, with_props, qos0):
        wait_for(lambda p=p: _count(s.database_url, p["reading_id"]) == 1, what=f"reading {p['reading_id']}")
    wait_for(lambda: scalar(s.database_url, "SELECT code FROM deadletters WHERE raw = %s", [malformed]) == "not_json",
             what="the malformed one with properties dead-lettered")
