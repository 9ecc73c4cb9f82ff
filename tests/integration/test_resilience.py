"""Failures of the parts around the pipeline: Kafka down, a consumer killed, the database dropping connections."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from runtime.embedded import EmbeddedKafka
from runtime.kafka_topics import ensure_topics
from runtime.mosquitto import Mosquitto, find_mosquitto
from runtime.ports import free_port
from storage.db import connect
from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration


def _topics(settings) -> list[str]:
    return [settings.topic_readings, settings.topic_deadletter, settings.topic_alerts, settings.topic_certificates]


def _stored(settings) -> int:
    return int(scalar(settings.database_url, "SELECT count(*) FROM readings"))


def test_kafka_down_bridge_acknowledges_nothing_and_every_reading_arrives_after(
    settings, pipeline, mqtt_broker, tmp_path
):
    if mqtt_broker.amqtt:
        pytest.skip("amqtt forgets a QoS 1 message whose PUBACK takes over 5 s, so it cannot hold readings "
                    "through a Kafka outage; set RT_TEST_MQTT_URL to a Mosquitto to run this test")
    kafka_port = free_port()  # this test needs a Kafka of its own, to stop and start
    kafka = EmbeddedKafka(kafka_port, tmp_path / "kafka1").start()
    s = settings.with_overrides(kafka_bootstrap=kafka.bootstrap)
    ensure_topics(kafka.bootstrap, _topics(s), partitions=s.topic_partitions, replication=1)
    p = pipeline(settings_override=s)  # the bridge; the consumer starts once Kafka is back

    publish(s.mqtt_url, s.mqtt_protocol, [(reading_topic(), encode(reading_payload()))])
    wait_for(lambda: p.bridge.pending == 0 and p.bridge.last_kafka_error is None, what="Kafka to take a reading")

    kafka.stop()
    payloads = [reading_payload() for _ in range(40)]
    publish(s.mqtt_url, s.mqtt_protocol, [(reading_topic(), encode(x)) for x in payloads])
    # While Kafka's metadata is still taken as known, a send on the MQTT thread may block up to the
    # producer's max_block_ms (2 s) before it fails over to the retry queue: allow for 40 of them.
    wait_for(lambda: p.bridge.pending == 40, timeout=120, what="40 readings held by the bridge")
    time.sleep(2)
    assert p.bridge.pending == 40, "the bridge acknowledged readings Kafka never took"

    p.bridge.stop(flush_timeout=1)  # the bridge goes down too; the broker's session keeps the readings
    p.bridge = None
    # Tansu keeps its data in memory: the Kafka that comes back is empty (Apache Kafka would not be)
    kafka = EmbeddedKafka(kafka_port, tmp_path / "kafka2").start()
    try:
        ensure_topics(kafka.bootstrap, _topics(s), partitions=s.topic_partitions, replication=1)
        p.start_bridge()
        p.start_consumers("store")
        ours = [x["reading_id"] for x in payloads]
        query = "SELECT count(*) FROM readings WHERE reading_id::text = ANY(%s)"
        wait_for(lambda: scalar(s.database_url, query, [ours]) == 40, timeout=90,
                 what="all 40 readings held through the outage")
    finally:
        p.stop()
        kafka.stop()


def _rows(settings, query):
    conn = connect(settings.database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def _consumer_process(settings) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update({
        "RT_DATABASE_URL": settings.database_url, "RT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "RT_TOPIC_READINGS": settings.topic_readings, "RT_TOPIC_DEADLETTER": settings.topic_deadletter,
        "RT_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix, "RT_KAFKA_MAX_POLL_INTERVAL_MS": "5000",
        "RT_KAFKA_SESSION_TIMEOUT_MS": "6000", "RT_CONSUMER_BATCH_SIZE": "200",
    })
    return subprocess.Popen([sys.executable, "-m", "runtime.cli", "consume", "store"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_consumer_killed_mid_stream_loses_and_doubles_nothing(settings, pipeline, mqtt_broker):
    pipeline()  # the bridge only; the consumer runs as a separate process we can kill
    total = 3000
    payloads = [reading_payload() for _ in range(total)]
    publish(settings.mqtt_url, settings.mqtt_protocol, [(reading_topic(), encode(x)) for x in payloads])

    consumer = _consumer_process(settings)
    try:
        wait_for(lambda: _stored(settings) > 0, timeout=60, what="the consumer to start storing")
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(10)
        killed_at = _stored(settings)
        assert 0 < killed_at < total, f"killed after {killed_at} rows: not mid-stream"
        consumer = _consumer_process(settings)
        ours = [x["reading_id"] for x in payloads]
        query = "SELECT count(*), count(DISTINCT reading_id) FROM readings WHERE reading_id::text = ANY(%s)"
        wait_for(lambda: scalar(settings.database_url, query, [ours]) >= total, timeout=90,
                 what=f"{total} rows after the restart")
        time.sleep(1)
        count, distinct = rows(settings.database_url, query, [ours])[0]
        assert count == distinct == total
    finally:
        consumer.kill()
        consumer.wait(10)


def test_database_dropping_connections_pauses_the_consumer_which_resumes_by_itself(settings, pipeline, mqtt_broker):
    pipeline("store")
    total = 1500
    stop = threading.Event()

    def sever() -> None:
        while not stop.is_set():
            conn = connect(settings.database_url)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND application_name = 'rapidtrace-store'")
                conn.commit()
            finally:
                conn.close()
            stop.wait(0.3)

    killer = threading.Thread(target=sever, daemon=True)
    killer.start()
    try:
        publish(settings.mqtt_url, settings.mqtt_protocol,
                [(reading_topic(), encode(reading_payload())) for _ in range(total)])
        time.sleep(3)
    finally:
        stop.set()
        killer.join()
    wait_for(lambda: _stored(settings) == total, timeout=60, what=f"{total} rows once connections stay up")


def test_bridge_keeps_acknowledging_while_a_backlog_streams_in(settings, pipeline, tmp_path):
    """A backlog held by the broker keeps the bridge's socket full for seconds; the bridge must still
    write its PUBACKs meanwhile, or the broker takes it for dead at 1.5 x keepalive and drops it (and
    redelivers everything in flight)."""
    if find_mosquitto() is None:
        pytest.skip("needs a Mosquitto binary: the project's broker config holds a backlog of any size")
    # no in-flight cap: the whole backlog streams in at once (~10 s of reading here); a bridge that
    # wrote nothing until its socket ran dry would be dropped after 1.5 s, again and again
    broker = Mosquitto(free_port(), tmp_path / "mosquitto", extra_conf="max_inflight_messages 0\n")
    broker.start()
    try:
        s = settings.with_overrides(mqtt_url=broker.url, mqtt_protocol="5", mqtt_keepalive_s=1,
                                    mqtt_receive_maximum=65535)
        p = pipeline(settings_override=s)  # the bridge: its session and subscription now exist
        p.stop_bridge()
        payloads = [reading_payload() for _ in range(30000)]
        publish(s.mqtt_url, "5", [(reading_topic(), encode(x)) for x in payloads], timeout=120)
        p.start_consumers("store")
        p.start_bridge()  # receives the backlog: several seconds of reading at 1 s keepalive
        wait_for(lambda: _stored(s) >= len(payloads), timeout=120, what=f"all {len(payloads)} readings")
        assert p.bridge.mqtt_disconnects == 0, "the broker dropped the bridge while it read the backlog"
        assert _stored(s) == len(payloads)
    finally:
        broker.stop()
