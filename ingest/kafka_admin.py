"""Kafka's admin side: the lag of the project's consumer groups (``GET /metrics``), and whether a broker
answers admin requests yet (``runtime.embedded`` waiting for Tansu).

An adapter beside :mod:`ingest.kafka_out` (the producer): the only other ingest module that imports
kafka-python; its errors leave it as the project's (``kafka_error``), with the cause chained.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaError

from ingest.kafka_out import kafka_error


def topic_names(bootstrap: str) -> set[str]:
    """The broker's topics; a :class:`~schemas.errors.KafkaFailure` while no broker at ``bootstrap`` answers."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=2000, request_timeout_ms=3000)
    except (KafkaError, OSError) as exc:
        raise kafka_error(exc, "connecting an admin client") from exc
    try:
        return set(admin.list_topics())
    except (KafkaError, OSError) as exc:
        raise kafka_error(exc, "listing topics") from exc
    finally:
        admin.close()


def _groups(admin: KafkaAdminClient) -> list[str]:
    """The consumer groups' ids: kafka-python 3 lists dicts (``list_groups``), 2.x (group, protocol) tuples."""
    if hasattr(admin, "list_groups"):
        return [str(g["group_id"]) for g in admin.list_groups()]
    return [str(g[0]) for g in admin.list_consumer_groups()]


def _committed(admin: KafkaAdminClient, group: str) -> dict[Any, Any]:
    """A group's committed offsets by TopicPartition (kafka-python 3 answers per group, 2.x for the one asked)."""
    if hasattr(admin, "list_group_offsets"):
        return dict(admin.list_group_offsets({group: None}).get(group, {}))
    return dict(admin.list_consumer_group_offsets(group))


def consumer_lag(bootstrap: str, group_prefix: str) -> dict[tuple[str, str], int]:
    """Records not yet committed, per (consumer group, topic), for every group named ``{group_prefix}.*``."""
    servers = bootstrap.split(",")
    admin = consumer = None
    lag: dict[tuple[str, str], int] = {}
    try:
        admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=2000)
        consumer = KafkaConsumer(bootstrap_servers=servers, request_timeout_ms=3000, allow_auto_create_topics=False)
        prefix = group_prefix + "."
        for group in (g for g in _groups(admin) if g.startswith(prefix)):
            offsets = _committed(admin, group)
            ends = consumer.end_offsets(list(offsets))
            for tp, meta in offsets.items():
                lag[(group, tp.topic)] = lag.get((group, tp.topic), 0) + max(0, ends.get(tp, 0) - meta.offset)
    except Exception as exc:
        raise kafka_error(exc, "reading consumer lag") from exc
    finally:
        for client in (consumer, admin):
            if client is not None:
                client.close()
    return lag
