"""Kafka producer side: the producer, send-and-wait, and kafka-python's errors as the project's.

Besides ``ingest.kafka_admin`` (the admin client), the only ingest module that imports kafka-python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import DefaultPartitioner, murmur2

from schemas.errors import KafkaFailure, KafkaRefused, KafkaUnavailable
from schemas.settings import Settings


class KeyHashCache(DefaultPartitioner):
    """kafka-python's default (Java-compatible murmur2) partitioning, with each key's hash computed once.

    murmur2 is pure Python there; a fleet has a few thousand station ids, so the cache stays small.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys

    def partition(self, topic: str, key: Any, serialized_key: bytes | None, value: Any,
                  serialized_value: bytes | None, cluster: Any) -> int:
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return int(super().partition(topic, key, serialized_key, value, serialized_value, cluster))
        h = self._hashes.get(serialized_key)
        if h is None:
            h = murmur2(serialized_key) & 0x7FFFFFFF
            if len(self._hashes) < self._max_keys:
                self._hashes[serialized_key] = h
        ordered = sorted(partitions)
        return int(ordered[h % len(ordered)])


def make_producer(settings: Settings, *, client_id: str = "rapidtrace") -> KafkaProducer:
    if not settings.kafka_bootstrap:
        raise ValueError("RT_KAFKA_BOOTSTRAP is not set")
    compression = None if settings.kafka_compression == "none" else settings.kafka_compression
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        client_id=client_id,
        acks="all",
        compression_type=compression,
        linger_ms=settings.kafka_linger_ms,
        batch_size=256 * 1024,
        retries=5,
        retry_backoff_ms=int(settings.kafka_retry_backoff_s * 1000),
        request_timeout_ms=15_000,
        max_block_ms=2_000,
        max_in_flight_requests_per_connection=5,
        # Redelivery is made harmless downstream (idempotent writes keyed by record ids); producer
        # idempotence would also wedge on a broker that lost its state (OutOfOrderSequenceNumber).
        enable_idempotence=False,
        partitioner=KeyHashCache(),
        # Topics are made by the stack with their configured partitions (runtime/kafka_topics.py),
        # never by a producer's metadata request (Tansu ignores this flag; `rapidtrace up` pauses
        # the Kafka clients while it restarts Tansu and recreates the topics).
        allow_auto_create_topics=False,
    )


def kafka_error(exc: BaseException, doing: str = "the Kafka request") -> KafkaFailure:
    """The project's error for a kafka-python one (``raise kafka_error(e) from e``); retriable as kafka-python says."""
    if isinstance(exc, KafkaFailure):
        return exc
    if not isinstance(exc, KafkaError) or exc.retriable:  # timeouts, connection and leader errors
        return KafkaUnavailable(f"Kafka unavailable for {doing}: {exc or type(exc).__name__}")
    return KafkaRefused(f"Kafka refused {doing}: {exc or type(exc).__name__}")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to send and wait for."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def send_all(producer: KafkaProducer, records: Sequence[Outgoing], timeout_s: float = 10.0,
             doing: str = "sending records") -> None:
    """Send ``records``, flush, and wait for every acknowledgement: records a caller must know are in
    Kafka before it goes on (the API's certificate submissions, a consumer's alerts and dead letters
    before its offsets). A :class:`~schemas.errors.KafkaFailure` (retriable or not, as kafka-python
    says) when any is not acknowledged."""
    if not records:
        return
    try:
        futures = [producer.send(r.topic, key=r.key, value=r.value, headers=r.headers or None) for r in records]
        producer.flush(timeout=timeout_s)
        for future in futures:
            future.get(timeout=timeout_s)
    except KafkaError as exc:
        raise kafka_error(exc, doing) from exc
