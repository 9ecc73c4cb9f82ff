"""The consumer runner with the in-memory source and sink beside it, and its Kafka source's reset detection."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from kafka import KafkaAdminClient

from consumers.deadletter_store import DeadletterStore
from consumers.kafka_source import KafkaSource, LogReset
from consumers.runner import ConsumerLoop, PoisonRecord
from consumers.testing import MemorySink, MemorySource, record
from ingest.kafka_out import make_producer
from runtime.kafka_topics import ensure_topics
from schemas.deadletter import deadletter_value
from tests.helpers import rows, scalar

pytestmark = pytest.mark.integration


class _Refuses:
    """Stores dead letters, but a value ``b"poison"`` can never be written."""

    name = "refuses"

    def __init__(self, settings) -> None:
        self.inner = DeadletterStore(settings)
        self.committed: list[int] = []

    def topics(self, settings):
        return ["t"]

    def handle(self, conn, records):
        if any(r.value == b"poison" for r in records):
            raise PoisonRecord("poison", "this value is poison")
        return self.inner.handle(conn, records)

    def after_commit(self, result, out):
        self.committed.append(result)


def _run(loop: ConsumerLoop) -> threading.Thread:
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    return thread


def test_the_runner_writes_commits_and_dead_letters_through_an_injected_source_and_sink(settings):
    stop = threading.Event()
    values = [deadletter_value("mqtt", "t", b"x", "not_json", f"#{i}") for i in range(5)]
    source = MemorySource([record("t", v, offset=i) for i, v in enumerate(values)], stop_when_drained=stop)
    source.add(record("t", b"poison", offset=5), record("t", values[0], offset=6))  # a poison and a redelivery
    sink = MemorySink()
    handler = _Refuses(settings)
    _run(ConsumerLoop(handler, settings, stop, source=source, sink=sink)).join(20)
    assert stop.is_set() and source.closed
    assert source.committed == 7
    assert scalar(settings.database_url, "SELECT count(*) FROM deadletters") == 5
    (topic, key, value), = sink.sent
    assert (topic, key) == (settings.topic_deadletter, b"t")
    assert json.loads(value)["code"] == "poison"


def test_a_log_reset_reported_by_the_source_is_logged_counted_and_recorded(settings):
    from consumers.runner import LOG_RESETS

    stop = threading.Event()
    source = MemorySource([], stop_when_drained=stop)
    source.report_reset(LogReset(settings.topic_readings, "topic_recreated", (0, 1), 42))
    before = LOG_RESETS.labels("refuses", settings.topic_readings, "topic_recreated")._value.get()
    _run(ConsumerLoop(_Refuses(settings), settings, stop, source=source, sink=MemorySink())).join(20)
    assert LOG_RESETS.labels("refuses", settings.topic_readings, "topic_recreated")._value.get() == before + 1
    assert rows(settings.database_url, "SELECT topic, reason, partitions, records_maybe_lost FROM kafka_log_resets") \
        == [(settings.topic_readings, "topic_recreated", [0, 1], 42)]


def _drain(source: KafkaSource, want: int, timeout: float = 30) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += source.poll(200, 1000)
    return got


def test_the_kafka_source_reads_a_recreated_topic_from_its_start_and_says_what_was_unread(settings):
    topic = f"reset.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.kafka_bootstrap, [topic], partitions=1, replication=1)
    producer = make_producer(settings)
    for i in range(30):
        producer.send(topic, value=f"old {i}".encode())
    producer.flush()
    source = KafkaSource([topic], f"g{uuid.uuid4().hex[:8]}", "test", settings)
    try:
        assert len(_drain(source, 30)) == 30
        source.commit()
        for i in range(10):  # ten more the consumer never reads before the log goes
            producer.send(topic, value=f"unread {i}".encode())
        producer.flush()
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        admin.delete_topics([topic])
        admin.close()
        ensure_topics(settings.kafka_bootstrap, [topic], partitions=1, replication=1)
        for i in range(5):
            producer.send(topic, value=f"new {i}".encode())
        producer.flush()
        got = _drain(source, 5)
        resets = source.take_resets()
        assert [r.value for r in got] == [f"new {i}".encode() for i in range(5)]
        assert resets and resets[0].topic == topic
        assert resets[0].reason in {"topic_recreated", "beyond_high_watermark"}, resets
    finally:
        source.close()
        producer.close()


def test_a_position_beyond_the_high_watermark_is_a_reset_and_the_log_is_read_from_its_start(settings):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    topic, group = f"beyond.{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.kafka_bootstrap, [topic], partitions=1, replication=1)
    producer = make_producer(settings)
    for i in range(5):
        producer.send(topic, value=f"new {i}".encode())
    producer.flush()
    producer.close()
    # the group's committed position from a log that was longer: what a restarted broker's clients carry
    committer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1000, "", -1)})
    committer.close()
    source = KafkaSource([topic], group, "test", settings)
    try:
        got = _drain(source, 5)
        assert [r.value for r in got] == [f"new {i}".encode() for i in range(5)]
        (reset,) = source.take_resets()
        assert (reset.topic, reset.partitions) == (topic, (0,))
        assert reset.reason in {"beyond_high_watermark", "offset_out_of_range"}
    finally:
        source.close()
