"""Kafka log resets seen by consumers (table ``kafka_log_resets``, migration 0007)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Connection


@dataclass(frozen=True)
class ResetSummary:
    """The resets of the last ``window_s`` seconds."""

    count: int
    last_at: datetime | None
    topics: list[str]
    readings_maybe_lost: int  # the largest count any one consumer of the readings topic reported


def record_reset(conn: Connection, consumer: str, topic: str, reason: str, partitions: list[int],
                 records_maybe_lost: int) -> None:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO kafka_log_resets (consumer, topic, reason, partitions, records_maybe_lost)"
                    " VALUES (%s, %s, %s, %s, %s)", (consumer, topic, reason, partitions, records_maybe_lost))


def recent_resets(conn: Connection, window_s: float, readings_topic: str) -> ResetSummary:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), max(detected_at), coalesce(array_agg(DISTINCT topic), '{}') FROM kafka_log_resets"
            " WHERE detected_at > now() - make_interval(secs => %s)", (window_s,))
        count, last_at, topics = cur.fetchone() or (0, None, [])
        cur.execute(
            "SELECT coalesce(max(lost), 0) FROM (SELECT consumer, sum(records_maybe_lost) AS lost"
            " FROM kafka_log_resets WHERE detected_at > now() - make_interval(secs => %s) AND topic = %s"
            " GROUP BY consumer) per_consumer", (window_s, readings_topic))
        (lost,) = cur.fetchone() or (0,)
    return ResetSummary(int(count), last_at, sorted(topics), int(lost))
