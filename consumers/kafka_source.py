"""Kafka as the consumer runner's record source, with detection of a log that started over.

A Kafka-protocol broker whose log starts over (Tansu with memory storage restarted, a topic deleted
and recreated, retention past our position) leaves a consumer's fetch position pointing into a log
that no longer exists.  Tansu answers a fetch beyond its high watermark with *no records and no
error* (not ``OFFSET_OUT_OF_RANGE``), so ``auto_offset_reset`` never fires: the consumer waits until
the new log grows past its old position and silently skips everything before it.  This source
notices such a reset three ways and re-reads the new log from its start:

* a subscribed topic's id changed (the topic was recreated);
* the position of a partition lies beyond the high watermark the broker just reported;
* the broker answered ``OFFSET_OUT_OF_RANGE`` (``auto_offset_reset="none"``, handled here).

Each reset is returned by :meth:`KafkaSource.take_resets` with how many records of the old log this
consumer had not read yet (gone with it), for the runner to report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import NoOffsetForPartitionError, OffsetOutOfRangeError

from schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogReset:
    """The log of ``topic`` started over under this consumer."""

    topic: str
    reason: str  # topic_recreated | beyond_high_watermark | offset_out_of_range
    partitions: tuple[int, ...]
    records_maybe_lost: int  # records of the old log this consumer had not read


def make_kafka_consumer(topics: list[str], group: str, client_id: str, settings: Settings) -> KafkaConsumer:
    if not settings.kafka_bootstrap:
        raise ValueError("RT_KAFKA_BOOTSTRAP is not set")
    return KafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="none",  # no committed offset / out of range: decided (and reported) here
        allow_auto_create_topics=False,
        max_poll_records=settings.consumer_batch_size,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.kafka_session_timeout_ms // 4),
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        fetch_min_bytes=settings.kafka_fetch_min_bytes,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


class KafkaSource:
    """A consumer group member on ``topics``; :class:`consumers.runner.RecordSource` over Kafka."""

    def __init__(self, topics: list[str], group: str, client_id: str, settings: Settings,
                 consumer: KafkaConsumer | None = None) -> None:
        self.topics = topics
        self._consumer = consumer or make_kafka_consumer(topics, group, client_id, settings)
        self._topic_ids: dict[str, Any] = {}
        self._read_to: dict[TopicPartition, int] = {}  # highest high watermark seen per partition
        self._consumed: dict[TopicPartition, int] = {}  # next offset after the last record handed out
        self._resets: list[LogReset] = []

    # --- RecordSource ---
    def poll(self, timeout_ms: int, max_records: int) -> list[ConsumerRecord]:
        try:
            polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except NoOffsetForPartitionError as exc:  # a new group (or a broker that forgot it): from the start
            partitions = _partitions(exc)
            log.info("no committed offsets for %s: reading from the start", sorted(map(str, partitions)))
            self._consumer.seek_to_beginning(*partitions)
            return []
        except OffsetOutOfRangeError as exc:
            positions = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            for topic in {tp.topic for tp in positions}:
                tps = [tp for tp in positions if tp.topic == topic]
                self._reset(topic, "offset_out_of_range", tps, {tp: int(positions[tp]) for tp in tps})
            return []
        records = [r for batch in polled.values() for r in batch]
        for tp, batch in polled.items():
            if batch:
                self._consumed[tp] = batch[-1].offset + 1
        recreated = self._recreated_topics()
        if recreated:  # what this poll returned came from the new log at old positions: read it from its start
            records = [r for r in records if r.topic not in recreated]
        self._check_high_watermarks()
        return records

    def commit(self) -> None:
        self._consumer.commit()

    def pause(self) -> list[TopicPartition]:
        assigned = list(self._consumer.assignment())
        self._consumer.pause(*assigned)
        return assigned

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._consumer.resume(*partitions)

    def keep_alive(self, timeout_ms: int) -> None:
        """Poll while paused: the group keeps this member during a database outage."""
        try:
            self._consumer.poll(timeout_ms=timeout_ms)
        except (NoOffsetForPartitionError, OffsetOutOfRangeError) as exc:  # handled by the next real poll
            log.debug("while paused: %s", exc)

    def close(self) -> None:
        self._consumer.close(autocommit=False)

    def take_resets(self) -> list[LogReset]:
        resets, self._resets = self._resets, []
        return resets

    # --- reset detection ---
    def _recreated_topics(self) -> set[str]:
        cluster = self._consumer._client.cluster  # kafka-python keeps topic ids in its metadata cache only
        recreated = set()
        for topic in self.topics:
            now = cluster.topic_id(topic)
            if now is None:
                continue
            before = self._topic_ids.get(topic)
            self._topic_ids[topic] = now
            if before is not None and before != now:
                known = {tp for tp in (*self._read_to, *self._consumed) if tp.topic == topic}
                tps = sorted({tp for tp in self._consumer.assignment() if tp.topic == topic} | known)
                self._reset(topic, "topic_recreated", tps, {tp: self._consumed.get(tp, 0) for tp in tps})
                recreated.add(topic)
        return recreated

    def _check_high_watermarks(self) -> None:
        beyond: dict[str, list[TopicPartition]] = {}
        positions: dict[TopicPartition, int] = {}
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            position = self._position(tp)
            if high is None or position is None:
                continue
            if position > high:
                beyond.setdefault(tp.topic, []).append(tp)
                positions[tp] = position
            else:
                self._read_to[tp] = max(self._read_to.get(tp, 0), high)
        for topic, tps in beyond.items():
            self._reset(topic, "beyond_high_watermark", tps, positions)

    def _positions(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        found = {}
        for tp in tps:
            position = self._position(tp)
            if position is not None:
                found[tp] = position
        return found

    def _position(self, tp: TopicPartition) -> int | None:
        try:
            return int(self._consumer.position(tp, timeout_ms=0))
        except Exception:  # no position yet (being reset, not fetched)
            return None

    def _reset(self, topic: str, reason: str, tps: list[TopicPartition], positions: dict[TopicPartition, int]) -> None:
        lost = sum(max(0, self._read_to.get(tp, 0) - positions.get(tp, 0)) for tp in tps)
        for tp in tps:
            self._read_to.pop(tp, None)
            self._consumed.pop(tp, None)
        assigned = [tp for tp in tps if tp in self._consumer.assignment()]
        if assigned:
            self._consumer.seek_to_beginning(*assigned)
        self._resets.append(LogReset(topic, reason, tuple(sorted(tp.partition for tp in tps)), lost))


def _partitions(exc: NoOffsetForPartitionError) -> list[TopicPartition]:
    found = exc.args[0] if exc.args else ()
    return [tp for tp in found if isinstance(tp, TopicPartition)]
