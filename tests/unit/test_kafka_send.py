"""ingest/kafka_send.py: send, flush, wait for every acknowledgement; kafka-python's errors leave as the project's."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from ingest.kafka_send import Outgoing, send_all
from schemas.errors import KafkaRefused, KafkaUnavailable


class Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float) -> None:
        if self.error is not None:
            raise self.error


class FakeProducer:
    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.sent, self.flushed = error, [], False

    def send(self, topic: str, **kwargs: Any) -> Future:
        self.sent.append((topic, kwargs))
        return Future(self.error)

    def flush(self, timeout: float) -> None:
        self.flushed = True


def test_every_record_is_sent_then_flushed_and_acknowledged() -> None:
    producer = FakeProducer()
    send_all(producer, [Outgoing("t", b"k", b"v", [("h", b"1")]), Outgoing("t", None, b"w")])  # type: ignore[arg-type]
    assert producer.flushed and producer.sent == [
        ("t", {"key": b"k", "value": b"v", "headers": [("h", b"1")]}),
        ("t", {"key": None, "value": b"w", "headers": None}),
    ]


@pytest.mark.parametrize(("error", "translated"), [(KafkaTimeoutError("no ack"), KafkaUnavailable),
                                                    (MessageSizeTooLargeError("1 MB"), KafkaRefused)])
def test_an_unacknowledged_record_is_a_project_error_with_its_cause(error: Exception, translated: type) -> None:
    with pytest.raises(translated) as raised:
        send_all(FakeProducer(error), [Outgoing("t", b"k", b"v")], doing="queueing")  # type: ignore[arg-type]
    assert raised.value.__cause__ is error and "queueing" in str(raised.value)
