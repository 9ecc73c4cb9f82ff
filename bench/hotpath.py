"""``python -m bench.hotpath``: CPU a reading of each stage's own code, on real Kafka and PostgreSQL.

Where ``rapidtrace bench`` runs the whole pipeline (and its CPU figures include everything a busy
2-core machine does to each process), this measures one stage at a time, in this process, so two
versions of the code can be compared side by side within minutes:

- **bridge**: :meth:`ingest.bridge.Bridge.on_message` for every reading (routing, validation, the
  Kafka send, the acknowledgement callback) until Kafka acknowledged them all.  The MQTT client's
  own cost (paho reading and decoding packets) is not in it: ``rapidtrace bench``'s components
  figure gives that floor.
- **store**, **flagger**: the consumer runner with that handler, its real Kafka source (a fresh
  group) and a PostgreSQL connection, from the first poll until every reading is stored / judged.

Figures are process CPU seconds (all threads: Kafka's network threads included) over readings;
for the consumer stages also the CPU the stage's PostgreSQL backends used (``pg_us``; the server
must run on this machine, as the bench's does).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.components import fleet_messages
from bench.e2e import DEFAULT_ADMIN_DSN
from bench.e2e import _stored_count as _count
from bench.stats import backend_cpu
from consumers.registry import build
from consumers.runner import ConsumerLoop
from ingest.bridge import Bridge
from runtime.embedded import EmbeddedKafka
from runtime.kafka_topics import ensure_topics
from runtime.ports import free_port
from schemas.settings import Settings
from simulators.publisher import encode
from storage.db import create_database, drop_database
from storage.migrate import migrate


def _cpu_until(done: Callable[[], bool], timeout: float) -> tuple[float, float]:
    cpu0, wall0 = time.process_time(), time.monotonic()
    deadline = wall0 + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("the stage did not finish in time")
        time.sleep(0.05)
    return time.process_time() - cpu0, time.monotonic() - wall0


def bridge_stage(settings: Settings, messages: list[tuple[str, bytes]]) -> dict[str, float]:
    bridge = Bridge(settings)
    acked = 0
    lock = threading.Lock()

    def ack() -> None:
        nonlocal acked
        with lock:
            acked += 1

    bridge._sender.start()  # the retry thread; MQTT is not started: on_message is called directly
    try:
        cpu0, wall0 = time.process_time(), time.monotonic()
        for topic, payload in messages:
            bridge.on_message(topic, payload, ack)
        _cpu_until(lambda: acked >= len(messages), 120)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        bridge._stop.set()
        bridge._producer.close(timeout=5)
    n = len(messages)
    return {"readings": n, "cpu_us": round(cpu / n * 1e6, 1), "per_s": round(n / wall)}


def consumer_stage(name: str, table: str, settings: Settings, n: int, dbname: str) -> dict[str, float]:
    assert settings.database_url
    group = f"hotpath-{uuid.uuid4().hex[:8]}"
    s = settings.model_copy(update={"consumer_group_prefix": group})
    stop = threading.Event()
    loop = ConsumerLoop(build(name, s), s, stop)
    base = _count(settings.database_url, table)
    pg0 = backend_cpu(dbname)
    thread = threading.Thread(target=loop.run, daemon=True)
    cpu0, wall0 = time.process_time(), time.monotonic()
    thread.start()
    _cpu_until(lambda: _count(settings.database_url or "", table) >= base + n, 300)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    pg = sum(used - pg0.get(pid, 0.0) for pid, used in backend_cpu(dbname).items())
    stop.set()
    thread.join(30)
    return {"readings": n, "cpu_us": round(cpu / n * 1e6, 1), "pg_us": round(pg / n * 1e6, 1),
            "per_s": round(n / wall)}


def run(admin_dsn: str, count: int, stages: list[str]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="rt-hotpath-"))
    kafka = EmbeddedKafka(free_port(), work / "kafka").start()
    dbname = f"rt_bench_hotpath_{uuid.uuid4().hex[:8]}"
    dsn = create_database(admin_dsn, dbname)
    try:
        settings = Settings(database_url=dsn, kafka_bootstrap=kafka.bootstrap, mqtt_url="mqtt://127.0.0.1:1",
                            kafka_max_poll_interval_ms=5000, kafka_session_timeout_ms=6000)
        migrate(dsn, settings)
        ensure_topics(kafka.bootstrap, [settings.topic_readings, settings.topic_deadletter, settings.topic_alerts],
                      partitions=settings.topic_partitions, replication=1)
        messages = [(t, encode(p)) for t, p in fleet_messages(count, seed=11)]
        out: dict[str, Any] = {"bridge": bridge_stage(settings, messages)}
        if "store" in stages:
            out["store"] = consumer_stage("store", "readings", settings, count, dbname)
        if "flagger" in stages:
            out["flagger"] = consumer_stage("flagger", "verdicts", settings, count, dbname)
        if "readings" in stages:  # store and judge in one group, into a second database (the rows are new)
            second = create_database(admin_dsn, dbname + "_2")
            try:
                migrate(second, settings)
                together = settings.model_copy(update={"database_url": second})
                out["readings"] = consumer_stage("readings", "verdicts", together, count, dbname + "_2")
            finally:
                drop_database(admin_dsn, dbname + "_2")
        return out
    finally:
        kafka.stop()
        drop_database(admin_dsn, dbname)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=30_000)
    parser.add_argument("--stages", nargs="+", default=["bridge", "store", "flagger", "readings"])
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_DSN)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    figures = run(args.database_url, args.readings, args.stages)
    if args.json:
        print(json.dumps(figures))
    else:
        for stage, f in figures.items():
            server = f", PostgreSQL {f['pg_us']:.1f} µs" if "pg_us" in f else ""
            print(f"{stage:8s} {f['cpu_us']:7.1f} µs CPU a reading{server}, {f['per_s']:,} readings/s "
                  f"({f['readings']:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
