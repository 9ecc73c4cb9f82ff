"""/healthz: 503 with the same body when degraded (a Kafka log reset, a dependency down); /metrics' token setting."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from api.app import create_app
from ingest.kafka_admin import consumer_lag
from storage.db import connect
from storage.kafka_resets import recent_resets, record_reset

pytestmark = pytest.mark.integration


def test_a_recent_kafka_log_reset_makes_healthz_503_with_the_readings_that_may_be_gone(settings, api_client):
    assert api_client.get("/healthz").json()["dependencies"]["kafka_log"] == {"state": "up"}
    conn = connect(settings.database_url)
    record_reset(conn, "store", settings.topic_readings, "topic_recreated", [0, 1, 2], 120)
    record_reset(conn, "flagger", settings.topic_readings, "topic_recreated", [0, 1, 2], 80)
    conn.commit()
    conn.close()
    health = api_client.get("/healthz")
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "degraded"
    log_state = body["dependencies"]["kafka_log"]
    assert log_state["state"] == "reset" and log_state["readings_maybe_lost"] == 120
    assert log_state["topics"] == [settings.topic_readings] and "120 readings" in log_state["message"]
    conn = connect(settings.database_url)
    assert recent_resets(conn, 0.001, settings.topic_readings).count == 0  # once the alert window has passed
    conn.close()


def test_healthz_is_503_with_the_same_body_when_kafka_is_down(settings):
    with TestClient(create_app(settings.with_overrides(kafka_bootstrap="127.0.0.1:1"))) as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded" and health.json()["dependencies"]["kafka"]["state"] == "down"


def test_metrics_take_a_token_only_when_asked_to(settings):
    s = settings.with_overrides(api_auth=True)
    with TestClient(create_app(s)) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/healthz").status_code == 200
    with TestClient(create_app(s.with_overrides(metrics_require_token=True))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/healthz").status_code == 200


def test_metrics_read_the_database_through_storage_and_consumer_lag_through_the_kafka_admin_adapter(settings):
    servers = settings.kafka_bootstrap.split(",")
    producer = KafkaProducer(bootstrap_servers=servers)
    for value in (b"1", b"2", b"3"):
        producer.send(settings.topic_readings, value, partition=0).get(timeout=10)
    producer.close()
    group = f"{settings.consumer_group_prefix}.lag-probe"
    consumer = KafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    partition = TopicPartition(settings.topic_readings, 0)
    consumer.assign([partition])
    consumer.commit({partition: OffsetAndMetadata(1, "", -1)})
    consumer.close()
    assert consumer_lag(settings.kafka_bootstrap, settings.consumer_group_prefix) == {
        (group, settings.topic_readings): 2}
    with TestClient(create_app(settings)) as client:  # after the group exists: the scrape figures are cached 5 s
        text = client.get("/metrics").text
    assert "rt_readings_stored 0.0" in text  # a fresh database: counted exactly (storage.metrics)
    assert "# TYPE rt_deadletters_stored gauge" in text
    assert f'rt_consumer_lag{{group="{group}",topic="{settings.topic_readings}"}} 2.0' in text
