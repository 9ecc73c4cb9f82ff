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

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.deps import Database
from ingest.kafka_admin import consumer_lag
from schemas.errors import RapidtraceError
from schemas.settings import Settings
from storage.metrics import deadletter_counts, readings_count

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
            stored.add_metric([], float(readings_count(conn)))
            for code, n in deadletter_counts(conn).items():
                dead.add_metric([code], float(n))
            conn.rollback()
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
            found = consumer_lag(self._settings.kafka_bootstrap, self._settings.consumer_group_prefix)
        except RapidtraceError as exc:
            log.debug("metrics: consumer lag unavailable: %s", exc)
            return []
        for (group, topic), value in found.items():
            lag.add_metric([group, topic], float(value))
        return [lag]


def metrics_registry(pipeline: Collector) -> CollectorRegistry:
    """Every process's metrics where a multiprocess directory is shared, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(pipeline)
    return registry
