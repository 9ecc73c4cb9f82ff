"""Real services for the integration tests: external ones from the environment, else embedded ones.

- ``RT_TEST_DATABASE_URL``: an admin DSN of a running PostgreSQL (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``);
- ``RT_TEST_MQTT_URL`` (+ ``RT_TEST_MQTT_PROTOCOL``, "5" by default): a running MQTT broker;
- ``RT_TEST_KAFKA_BOOTSTRAP``: a running Kafka-protocol broker.

Unset, each is started embedded on a free port with its files in a temporary directory that
its stop function removes.  Every function returns what it started together with that stop function.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from runtime.embedded import EmbeddedKafka, EmbeddedMqtt, EmbeddedPostgres, ManagedProcess
from runtime.ports import PortTakenError, free_port
from storage.db import create_database, drop_database

Stop = Callable[[], None]
P = TypeVar("P", bound=ManagedProcess)

MQTT_PROTOCOLS = ("5", "3.1.1")


def _nothing() -> None:
    return None


def _start_in_temp_dir(kind: str, make: Callable[[Path, int], P]) -> tuple[P, Stop]:
    """Start a component on a free port in a fresh temp dir; retry if the port was taken meanwhile."""
    work = Path(tempfile.mkdtemp(prefix=f"rt-test-{kind}-"))
    try:
        for attempt in range(3):
            component = make(work, free_port())
            try:
                component.start()
                break
            except PortTakenError:
                if attempt == 2:
                    raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

    def stop() -> None:
        try:
            component.stop()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return component, stop


def start_kafka() -> tuple[str, Stop]:
    """``(bootstrap, stop)``: ``RT_TEST_KAFKA_BOOTSTRAP`` or an embedded Tansu."""
    external = os.environ.get("RT_TEST_KAFKA_BOOTSTRAP")
    if external:
        return external, _nothing
    kafka, stop = _start_in_temp_dir("kafka", lambda work, port: EmbeddedKafka(port, work))
    return kafka.bootstrap, stop


def postgres_admin_dsn() -> tuple[str, Stop]:
    """``(admin dsn, stop)``: ``RT_TEST_DATABASE_URL`` or an embedded PostgreSQL 18."""
    external = os.environ.get("RT_TEST_DATABASE_URL")
    if external:
        return external, _nothing
    pg, stop = _start_in_temp_dir("pg", lambda work, port: EmbeddedPostgres(work / "data", port, log_dir=work))
    return pg.admin_dsn, stop


def mqtt_url() -> tuple[str, str, Stop]:
    """``(url, protocol, stop)``: ``RT_TEST_MQTT_URL`` or an embedded amqtt (MQTT 3.1.1)."""
    external = os.environ.get("RT_TEST_MQTT_URL")
    if external:
        protocol = os.environ.get("RT_TEST_MQTT_PROTOCOL", "5")
        if protocol not in MQTT_PROTOCOLS:
            raise ValueError(f"RT_TEST_MQTT_PROTOCOL must be one of {MQTT_PROTOCOLS}, not {protocol!r}")
        return external, protocol, _nothing
    # amqtt keeps a persistent session's messages only for a named client (see runtime/embedded.py)
    broker, stop = _start_in_temp_dir("mqtt", lambda work, port: EmbeddedMqtt(port, work, allow_anonymous=False))
    return f"mqtt://rapidtrace:test@127.0.0.1:{broker.port}", "3.1.1", stop


def fresh_database(admin_dsn: str) -> tuple[str, Stop]:
    """Create a uniquely named database; ``drop`` ends its leftover connections and removes it."""
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    dsn = create_database(admin_dsn, name)
    return dsn, lambda: drop_database(admin_dsn, name)


def unique_topics(prefix: str) -> dict[str, str]:
    """The four topic settings (``topic_readings`` ...) with names no other test uses."""
    suffix = uuid.uuid4().hex[:8]
    return {
        f"topic_{kind}": f"{prefix}.{kind}.{suffix}"
        for kind in ("readings", "certificates", "alerts", "deadletter")
    }

