"""Create the project's Kafka topics at start-up and wait until every partition has a leader."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from schemas.errors import SetupError

log = logging.getLogger(__name__)


class TopicSetupError(SetupError):
    """Topics could not be created or did not become ready; ``retriable`` says whether waiting helps."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


def ensure_topics(
    bootstrap: str,
    topics: list[str],
    partitions: int,
    replication: int,
    timeout_s: float = 30,
) -> dict[str, int]:
    """Create the missing ``topics``; return each topic's partition count once all have leaders.

    An existing topic is left as it is (a different partition count is logged, not changed).
    Connection errors are retried until ``timeout_s`` (the broker may still be starting);
    a rejected request (e.g. a replication factor above the broker count) fails at once.
    """
    if partitions < 1 or replication < 1:
        raise ValueError(f"partitions ({partitions}) and replication ({replication}) must be at least 1")
    names = list(dict.fromkeys(topics))
    if not names:
        return {}
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while True:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise TopicSetupError(f"Kafka topics {names} not ready at {bootstrap} after {timeout_s}s: {last}",
                                  retriable=True) from last
        try:
            return _create_and_wait(bootstrap, names, partitions, replication, remaining_ms)
        except KafkaError as exc:
            if not exc.retriable:
                raise TopicSetupError(f"Kafka refused topics {names}: {exc}", retriable=False) from exc
            last = exc
            log.info("Kafka at %s not ready for topic set-up yet: %s", bootstrap, exc)
            time.sleep(min(0.5, max(deadline - time.monotonic(), 0)))


def _create_and_wait(
    bootstrap: str, names: list[str], partitions: int, replication: int, timeout_ms: int
) -> dict[str, int]:
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="rapidtrace-topics",
        bootstrap_timeout_ms=max(min(timeout_ms, 5000), 100),
        request_timeout_ms=max(min(timeout_ms, 10000), 100),
    )
    try:
        spec = {name: {"num_partitions": partitions, "replication_factor": replication} for name in names}
        response = admin.create_topics(spec, raise_errors=False)
        _raise_for_topic_errors(response)
        admin.wait_for_topics(names, timeout_ms=timeout_ms)
        described = admin.describe_topics(names)
    finally:
        admin.close()
    counts = {t["name"]: len(t["partitions"]) for t in described}
    for name, count in counts.items():
        if count != partitions:
            log.warning("topic %s has %d partitions, not the configured %d; left unchanged", name, count, partitions)
    return counts


def _raise_for_topic_errors(response: dict[str, Any]) -> None:
    for topic in response["topics"]:
        code = topic["error_code"]
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        error = for_code(code)
        raise error(f"topic {topic['name']}: {topic.get('error_message') or error.__name__}")
