"""ingest.kafka_out.send_all: kafka-python's errors leave as the project's, with their cause. (Sending itself runs on
real Kafka wherever a test posts to /v1/certificates, e.g. tests/integration/test_auth_matrix.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from ingest.kafka_out import Outgoing, send_all
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


@pytest.mark.parametrize(("error", "translated"), [(KafkaTimeoutError("no ack"), KafkaUnavailable),
                                                    (MessageSizeTooLargeError("1 MB"), KafkaRefused)])
def test_an_unacknowledged_record_is_a_project_error_with_its_cause(error: Exception, translated: type) -> None:
    with pytest.raises(translated) as raised:
        send_all(FakeProducer(error), [Outgoing("t", b"k", b"v")], doing="queueing")  # type: ignore[arg-type]
    assert raised.value.__cause__ is error and "queueing" in str(raised.value)
