"""What ``GET /metrics`` serves.

* The bridge's and consumers' counters (messages in, produced, dead-lettered,
  inserted): with ``PROMETHEUS_MULTIPROC_DIR`` set for every process (as
  ``rapidtrace up`` and the compose file do, on a shared directory), the API
  aggregates all processes' metrics; without it each process can serve its own
  with ``--metrics-port``.
* Figures computed on scrape from the database and Kafka: rows stored, dead
  letters by code, consumer lag, cached for a few seconds so scrapes stay cheap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
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
        stored = GaugeMetricFamily("rt_readings_stored", "Readings in the database (exact below 100k, then estimated)")
        dead = GaugeMetricFamily("rt_deadletters_stored", "Dead letters in the database", labels=["code"])
        try:
            conn = self._database.getconn()
        except Exception:
            return []
        try:
            with conn.cursor() as cur:
                stored.add_metric([], float(_readings_count(cur)))
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
            consumer = KafkaConsumer(bootstrap_servers=servers, request_timeout_ms=3000, allow_auto_create_topics=False)
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


def metrics_registry(pipeline: Collector) -> CollectorRegistry:
    """Every process's metrics where a multiprocess directory is shared, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(pipeline)
    return registry


def _readings_count(cur: Any) -> int:
    """A scrape must not scan millions of rows: the planner's estimate (TimescaleDB's for a
    hypertable), and an exact count only while the table is small."""
    cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if cur.fetchone():
        cur.execute("SELECT approximate_row_count('readings')")
    else:
        cur.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'readings'::regclass")
    estimate = int(cur.fetchone()[0])
    if estimate < 100_000:
        cur.execute("SELECT count(*) FROM readings")
        estimate = int(cur.fetchone()[0])
    return estimate
