"""A throw-away rapidtrace stack for benchmarks: its own Mosquitto (project config), Tansu, a scratch
database on a given PostgreSQL server, and rapidtrace processes started exactly as production starts
them (``python -m runtime.cli …``), each logging to a file in the work directory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from runtime.embedded import EmbeddedKafka
from runtime.kafka_topics import ensure_topics
from runtime.mosquitto import Mosquitto
from runtime.ports import free_port
from schemas.settings import Settings
from storage.db import create_database, drop_database
from storage.migrate import migrate


@dataclass
class BenchStack:
    settings: Settings
    admin_dsn: str
    dbname: str
    mosquitto: Mosquitto
    kafka: EmbeddedKafka
    env: dict[str, str]
    work: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def start(cls, admin_dsn: str, work: Path, tag: str, **env: str) -> BenchStack:
        """Brokers up, database migrated, topics created; ``env``: extra ``RT_*`` for the processes."""
        work.mkdir(parents=True, exist_ok=True)
        mosquitto = Mosquitto(free_port(), work / "mosquitto")
        mosquitto.start()
        kafka = EmbeddedKafka(free_port(), work / "kafka").start()
        dbname = f"rt_bench_{tag}_{uuid.uuid4().hex[:8]}"
        dsn = create_database(admin_dsn, dbname)
        settings = Settings(
            database_url=dsn, mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}", mqtt_protocol="5",
            kafka_bootstrap=kafka.bootstrap, kafka_max_poll_interval_ms=5000, kafka_session_timeout_ms=6000,
            mqtt_client_id=f"bench-bridge-{dbname}",
        )
        migrate(dsn, settings)
        ensure_topics(kafka.bootstrap, [settings.topic_readings, settings.topic_deadletter, settings.topic_alerts,
                                        settings.topic_certificates],
                      partitions=settings.topic_partitions, replication=1)
        process_env = {
            **os.environ,
            "RT_DATABASE_URL": dsn, "RT_MQTT_URL": settings.mqtt_url or "", "RT_MQTT_PROTOCOL": "5",
            "RT_KAFKA_BOOTSTRAP": kafka.bootstrap, "RT_KAFKA_MAX_POLL_INTERVAL_MS": "5000",
            "RT_KAFKA_SESSION_TIMEOUT_MS": "6000", "RT_MQTT_CLIENT_ID": settings.mqtt_client_id,
            **env,
        }
        return cls(settings, admin_dsn, dbname, mosquitto, kafka, process_env, work)

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """``rapidtrace ARGS`` as process ``name``, logging to ``WORK/NAME.log``."""
        with (self.work / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", *args], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.children[name] = proc
        return proc

    def pids(self) -> dict[str, int]:
        """Every process of the stack, brokers included (for CPU and RSS figures)."""
        out = {name: p.pid for name, p in self.children.items()}
        out.update({"mosquitto": self.mosquitto.pid or 0, "tansu": self.kafka.pid or 0})
        return out

    def stop(self) -> None:
        for proc in self.children.values():
            proc.terminate()
        for proc in self.children.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.kafka.stop()
        self.mosquitto.stop()
        drop_database(self.admin_dsn, self.dbname)
