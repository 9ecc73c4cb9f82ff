"""Send and wait: records a caller must know are in Kafka before it answers (the API's certificate
submissions and their dead letters).

An adapter beside :mod:`ingest.kafka_out` (which makes the producer): kafka-python's errors leave here
as the project's (:func:`ingest.kafka_out.kafka_error`), with the cause chained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ingest.kafka_out import kafka_error


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def send_all(producer: KafkaProducer, records: Sequence[Outgoing], timeout_s: float = 10.0,
             doing: str = "sending records") -> None:
    """Send ``records``, flush, and wait for every acknowledgement; a :class:`~schemas.errors.KafkaFailure`
    (retriable or not, as kafka-python says) when any is not acknowledged."""
    try:
        futures = [producer.send(r.topic, key=r.key, value=r.value, headers=r.headers or None) for r in records]
        producer.flush(timeout=timeout_s)
        for future in futures:
            future.get(timeout=timeout_s)
    except KafkaError as exc:
        raise kafka_error(exc, doing) from exc
