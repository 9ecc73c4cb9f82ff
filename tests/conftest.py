"""Fixtures: real brokers and databases, each test with its own database and topics.

Services come from ``RT_TEST_DATABASE_URL`` / ``RT_TEST_MQTT_URL`` when set
(CI points them at the PostgreSQL and Mosquitto already running), else from
the embedded components; Tansu is started once per session.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas.settings import Settings
from tests import services


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    bootstrap, stop = services.start_kafka()
    try:
        yield bootstrap
    finally:
        stop()


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    dsn, stop = services.postgres_admin_dsn()
    try:
        yield dsn
    finally:
        stop()


@dataclass(frozen=True)
class MqttBroker:
    url: str
    protocol: str
    amqtt: bool  # the embedded pure-Python broker (no RT_TEST_MQTT_URL)


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[MqttBroker]:
    url, protocol, stop = services.mqtt_url()
    try:
        yield MqttBroker(url, protocol, amqtt=not os.environ.get("RT_TEST_MQTT_URL"))
    finally:
        stop()


@pytest.fixture
def db_dsn(pg_admin_dsn: str) -> Iterator[str]:
    from storage.migrate import migrate

    dsn, drop = services.fresh_database(pg_admin_dsn)
    try:
        migrate(dsn, Settings())
        yield dsn
    finally:
        drop()


@pytest.fixture
def settings(db_dsn: str, kafka_bootstrap: str, mqtt_broker: MqttBroker) -> Settings:
    from runtime.kafka_topics import ensure_topics

    tag = uuid.uuid4().hex[:10]
    topics = services.unique_topics(f"t{tag}")
    s = Settings(
        database_url=db_dsn,
        kafka_bootstrap=kafka_bootstrap,
        mqtt_url=mqtt_broker.url,
        mqtt_protocol=mqtt_broker.protocol,  # type: ignore[arg-type]
        mqtt_client_id=f"rt-bridge-{tag}",
        mqtt_shared_group=f"g{tag}",
        consumer_group_prefix=f"rt{tag}",
        kafka_max_poll_interval_ms=5000,
        kafka_session_timeout_ms=6000,
        consumer_poll_timeout_ms=100,
        kafka_retry_backoff_s=0.2,
        kafka_retry_backoff_max_s=1.0,
        api_auth=False,
        **topics,
    )
    ensure_topics(kafka_bootstrap, list(topics.values()), partitions=s.topic_partitions, replication=1)
    return s


@pytest.fixture
def api_client(settings: Settings) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client


@dataclass
class Pipeline:
    """The bridge and named consumers, running in threads of the test process."""

    settings: Settings
    stop_event: threading.Event = field(default_factory=threading.Event)
    bridge: Any = None
    threads: list[threading.Thread] = field(default_factory=list)

    def start_bridge(self) -> None:
        from ingest.bridge import Bridge

        self.bridge = Bridge(self.settings)
        self.bridge.start()
        assert self.bridge.wait_connected(15), "bridge did not connect to MQTT"
        time.sleep(0.3)  # let the SUBACK arrive before anyone publishes

    def stop_bridge(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None

    def start_consumers(self, *names: str) -> None:
        from consumers.main import start_consumers

        self.threads += start_consumers(list(names), self.settings, self.stop_event)

    def stop(self) -> None:
        self.stop_bridge()
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=20)


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Callable[..., Pipeline]]:
    started: list[Pipeline] = []

    def start(*consumers: str, bridge: bool = True, settings_override: Settings | None = None) -> Pipeline:
        p = Pipeline(settings_override or settings)
        started.append(p)
        if consumers:
            p.start_consumers(*consumers)
        if bridge:
            p.start_bridge()
        return p

    try:
        yield start
    finally:
        for p in started:
            p.stop()
