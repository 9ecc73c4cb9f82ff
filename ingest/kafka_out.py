"""Kafka producer side: the only ingest module that imports kafka-python."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from kafka import KafkaProducer

from schemas.common import rfc3339, utc_now
from schemas.settings import Settings


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
    )


def deadletter_value(
    source: str,
    source_topic: str,
    raw: bytes,
    code: str,
    reason: str,
    received_at: datetime | None = None,
) -> bytes:
    """A ``rt.deadletter.v1`` value: the raw bytes, where they came from, why, and when."""
    return json.dumps(
        {
            "v": 1,
            "source": source,
            "source_topic": source_topic,
            "code": code,
            "reason": reason,
            "received_at": rfc3339(received_at or utc_now()),
            "raw_b64": base64.b64encode(raw).decode("ascii"),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
