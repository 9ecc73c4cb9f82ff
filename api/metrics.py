"""Pipeline figures computed on scrape: rows stored, dead letters by code, consumer lag.

The bridge and consumers keep their own counters (each process can serve them
with ``--metrics-port``); this collector gives the API's view from the
database and Kafka, cached for a few seconds so scrapes stay cheap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.deps import Database
from schemas.settings import Settings

log = logging.getLogger(__name__)


class PipelineCollector(Collector):
    def __init__(self, settings: Settings, database: Database, ttl_s: float = 5.0) -> None:
        self._settings = settings
        self._database = database
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._cached_at = 0.0
        self._cache: list[GaugeMetricFamily] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._cached_at > self._ttl:
                self._cache = self._db_metrics() + self._lag_metrics()
                self._cached_at = time.monotonic()
            yield from self._cache

    def _db_metrics(self) -> list[GaugeMetricFamily]:
        stored = GaugeMetricFamily("rt_readings_stored", "Readings in the database (planner estimate past 1M)")
        dead = GaugeMetricFamily("rt_deadletters_stored", "Dead letters in the database", labels=["code"])
        try:
            conn = self._database.getconn()
        except Exception:
            return []
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM (SELECT 1 FROM readings LIMIT 1000000) s")
                count = cur.fetchone()[0]  # type: ignore[index]
                stored.add_metric([], float(count))
                cur.execute("SELECT code, count(*) FROM deadletters GROUP BY code")
                for code, n in cur.fetchall():
                    dead.add_metric([code], float(n))
            return [stored, dead]
        except Exception as exc:
            log.debug("metrics: database query failed: %s", exc)
            return []
        finally:
            self._database.putconn(conn)

    def _lag_metrics(self) -> list[GaugeMetricFamily]:
        lag = GaugeMetricFamily("rt_consumer_lag", "Records not yet committed by a consumer group",
                                labels=["group", "topic"])
        if not self._settings.kafka_bootstrap:
            return []
        try:
            from kafka import KafkaAdminClient, KafkaConsumer

            servers = self._settings.kafka_bootstrap.split(",")
            admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=2000)
            consumer = KafkaConsumer(bootstrap_servers=servers, request_timeout_ms=3000)
            try:
                prefix = self._settings.consumer_group_prefix + "."
                groups = [g[0] for g in admin.list_consumer_groups() if str(g[0]).startswith(prefix)]
                for group in groups:
                    offsets = admin.list_consumer_group_offsets(group)
                    ends = consumer.end_offsets(list(offsets))
                    per_topic: dict[str, int] = {}
                    for tp, meta in offsets.items():
                        per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, ends.get(tp, 0) - meta.offset)
                    for topic, value in per_topic.items():
                        lag.add_metric([group, topic], float(value))
            finally:
                consumer.close()
                admin.close()
            return [lag]
        except Exception as exc:
            log.debug("metrics: consumer lag unavailable: %s", exc)
            return []
