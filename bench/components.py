"""The raw components alone: MQTT publish→subscribe, Kafka produce→consume, PostgreSQL inserts.

Each function runs ``count`` realistic messages (simulated fleet readings)
through one component, cleans up after itself and returns a dict of figures.
``python -m bench.components`` runs those whose address it is given.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import multiprocessing as mp
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil

from bench.stats import percentiles, rate
from schemas.settings import Settings
from simulators.fleet import Fleet, FleetConfig
from simulators.publisher import Publisher, encode, parse_mqtt_url

Figures = dict[str, Any]


def fleet_messages(count: int, seed: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """``count`` simulated readings, generated before any clock starts."""
    start = datetime.now(UTC) - timedelta(seconds=count)
    return list(Fleet(FleetConfig(seed=seed, markets=10)).readings(count, start))


def _reading_id(payload: bytes) -> bytes:
    """The reading_id of an encoded reading, without parsing the JSON (36 characters)."""
    at = payload.find(b'"reading_id":"') + 14
    return payload[at:at + 36]


def _latency_ms(sent: dict[bytes, float], received: dict[bytes, float]) -> dict[str, float]:
    return {k: round(v * 1000, 1) if k != "n" else v
            for k, v in percentiles(received[i] - sent[i] for i in received if i in sent).items()}


# --- MQTT ---------------------------------------------------------------------------------------


def _mqtt_subscriber(url: str, protocol: str, topic_filter: str, count: int, ready: Any, out: Any) -> None:
    """Child process: receive until ``count`` distinct ids or 10 s of silence; send back receive times."""
    import paho.mqtt.client as mqtt

    received: dict[bytes, float] = {}
    total = [0]

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received[_reading_id(bytes(message.payload))] = time.time()
        total[0] += 1

    address = parse_mqtt_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
    client.on_connect = lambda c, *a: c.subscribe(topic_filter, qos=1)
    client.on_subscribe = lambda *a: ready.set()
    client.on_message = on_message
    client.connect(address.host, address.port)
    client.loop_start()
    last, seen = time.monotonic(), 0
    cpu0 = time.process_time()
    while len(received) < count and time.monotonic() - last < 10:
        time.sleep(0.05)
        if total[0] != seen:
            last, seen = time.monotonic(), total[0]
    cpu = time.process_time() - cpu0  # the subscriber's CPU: paho reading, decoding and acknowledging
    client.disconnect()
    client.loop_stop()
    out.send((received, total[0], cpu))


def mqtt_throughput(url: str, count: int = 50_000, protocol: str = "3.1.1", max_outstanding: int = 1000,
               messages: list[tuple[str, dict[str, Any]]] | None = None, broker_pid: int | None = None) -> Figures:
    """paho publisher (this process) → broker → paho subscriber (another process), QoS 1, flat out;
    with ``broker_pid``, the broker's CPU a message too."""
    messages = messages or fleet_messages(count)
    tag = uuid.uuid4().hex[:10]
    bodies = [(f"rt-bench/{tag}/{topic.split('/', 2)[2]}", encode(p)) for topic, p in messages[:count]]
    ctx = mp.get_context("spawn")
    ready, (receiver, sender) = ctx.Event(), ctx.Pipe(duplex=False)
    child = ctx.Process(target=_mqtt_subscriber, args=(url, protocol, f"rt-bench/{tag}/#", count, ready, sender))
    child.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the benchmark subscriber did not subscribe within 30 s")
        publisher = Publisher(url, protocol, max_outstanding=max_outstanding).connect()
        broker = psutil.Process(broker_pid) if broker_pid else None
        broker0 = sum(broker.cpu_times()[:2]) if broker else 0.0
        started, pub0 = time.time(), time.process_time()
        for topic, body in bodies:
            publisher.publish(topic, body, _reading_id(body).decode())
        stats = publisher.close(120)
        acked_at, pub_cpu = time.time(), time.process_time() - pub0
        received, total, sub_cpu = receiver.recv()
        broker_cpu = sum(broker.cpu_times()[:2]) - broker0 if broker else None
    finally:
        child.join(30)
    sent = {k.encode(): v for k, v in publisher.sent_at.items()}
    last = max(received.values(), default=started)
    return {"component": "mqtt", "url": url, "protocol": protocol, "qos": 1, "messages": len(bodies),
            "payload_bytes": round(sum(len(b) for _, b in bodies) / len(bodies)),
            "max_outstanding": max_outstanding, "publish_acked_per_s": round(rate(stats.acked, acked_at - started)),
            "end_to_end_per_s": round(rate(len(received), last - started)),
            "lost": len(bodies) - len(received), "doubled": total - len(received),
            "subscriber_cpu_us": round(sub_cpu / max(total, 1) * 1e6, 1),
            "publisher_cpu_us": round(pub_cpu / len(bodies) * 1e6, 1),
            **({"broker_cpu_us": round(broker_cpu / len(bodies) * 1e6, 1)} if broker_cpu is not None else {}),
            "latency_ms": _latency_ms(sent, received)}


# --- Kafka --------------------------------------------------------------------------------------


def _envelope(topic: str, payload: dict[str, Any]) -> tuple[bytes, bytes]:
    """The (key, value) the bridge would produce for this reading."""
    value = {"v": 1, "market_id": payload["market_id"], "station_id": payload["station_id"],
             "device_id": payload["device_id"], "mqtt_topic": topic,
             "received_at": datetime.now(UTC).isoformat(), "payload": payload}
    return payload["station_id"].encode(), encode(value)


@contextmanager
def _scratch_topic(bootstrap: str, partitions: int) -> Iterator[str]:
    from kafka.admin import KafkaAdminClient, NewTopic

    name = f"bench.{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="rt-bench-admin")
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
        yield name
    finally:
        try:
            admin.delete_topics([name])
        except Exception as exc:  # the broker may not support deletion; the topic is scratch anyway
            print(f"bench: could not delete Kafka topic {name}: {exc}", file=sys.stderr)
        admin.close()


def _kafka_consumer(bootstrap: str, topic: str, fetch_max_wait_ms: int = 50) -> Any:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=fetch_max_wait_ms, max_poll_records=5000)
    deadline = time.monotonic() + 15
    while not (partitions := consumer.partitions_for_topic(topic)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assigned = [TopicPartition(topic, p) for p in sorted(partitions or ())]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    return consumer


def _drain(consumer: Any, count: int, idle_s: float = 10.0,
           on_record: Callable[[Any, float], None] | None = None) -> int:
    got, last = 0, time.monotonic()
    while got < count and time.monotonic() - last < idle_s:
        batches = consumer.poll(timeout_ms=200)
        now = time.time()
        for records in batches.values():
            got += len(records)
            if on_record is not None:
                for record in records:
                    on_record(record, now)
        if batches:
            last = time.monotonic()
    return got


def _kafka_live_consumer(bootstrap: str, topic: str, count: int, ready: Any, out: Any) -> None:
    """Child process: consume as records are produced; send back receive times by reading_id."""
    consumer = _kafka_consumer(bootstrap, topic)
    consumer.poll(timeout_ms=100)
    ready.set()
    received: dict[bytes, float] = {}
    total = _drain(consumer, count, on_record=lambda r, now: received.__setitem__(_reading_id(r.value), now))
    consumer.close()
    out.send((received, total))


def kafka_throughput(bootstrap: str, count: int = 50_000, partitions: int = 3, compression: str = "none",
                messages: list[tuple[str, dict[str, Any]]] | None = None) -> Figures:
    """kafka-python producer (acks=all, the bridge's settings) → a live consumer in another process,
    then a second consumer draining the whole topic from the start."""
    from kafka.record import util as record_util

    from ingest.kafka_out import make_producer

    records = [_envelope(t, p) for t, p in (messages or fleet_messages(count))[:count]]
    settings = Settings(kafka_bootstrap=bootstrap, kafka_compression=compression)
    with _scratch_topic(bootstrap, partitions) as topic:
        ctx = mp.get_context("spawn")
        ready, (receiver, sender) = ctx.Event(), ctx.Pipe(duplex=False)
        child = ctx.Process(target=_kafka_live_consumer, args=(bootstrap, topic, len(records), ready, sender))
        child.start()
        try:
            if not ready.wait(60):
                raise RuntimeError("the benchmark consumer did not start within 60 s")
            produced = _produce(make_producer(settings, client_id="rt-bench"), topic, records)
            received, total = receiver.recv()
        finally:
            child.join(30)
        drain_started = time.monotonic()
        consumer = _kafka_consumer(bootstrap, topic)
        drained = _drain(consumer, len(records))
        drain_s = time.monotonic() - drain_started
        consumer.close()
    last = max(received.values(), default=produced["started"])
    return {"component": "kafka", "bootstrap": bootstrap, "acks": "all", "compression": compression,
            "partitions": partitions, "messages": len(records),
            "crc32c_accelerated": record_util.crc32c_c is not None,
            "value_bytes": round(sum(len(v) for _, v in records) / len(records)),
            "produce_per_s": round(rate(len(records), produced["seconds"])), "produce_errors": produced["errors"],
            "produce_cpu_us": round(produced["cpu_us"], 1),
            "end_to_end_per_s": round(rate(len(received), last - produced["started"])),
            "lost": len(records) - len(received), "doubled": total - len(received),
            "latency_ms": _latency_ms(produced["sent"], received),
            "consume_backlog_per_s": round(rate(drained, drain_s))}


def _produce(producer: Any, topic: str, records: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    errors = [0]

    def failed(exc: BaseException) -> None:
        errors[0] += 1

    sent: dict[bytes, float] = {}
    started, cpu0 = time.time(), time.process_time()
    for key, value in records:
        sent[_reading_id(value)] = time.time()
        producer.send(topic, key=key, value=value).add_errback(failed)
    producer.flush(120)
    seconds, cpu = time.time() - started, time.process_time() - cpu0
    producer.close()
    return {"started": started, "seconds": seconds, "sent": sent, "errors": errors[0],
            "cpu_us": cpu / max(len(records), 1) * 1e6}


# --- PostgreSQL ---------------------------------------------------------------------------------

_COLUMNS = ("reading_id", "measured_at", "received_at", "market_id", "station_id", "device_id", "sample_id",
            "commodity", "analyte", "method", "strip_lot", "c_line", "t_line", "inhibition_pct",
            "device_result", "raw")
_DDL = """CREATE TABLE {table} (
    reading_id uuid NOT NULL, measured_at timestamptz NOT NULL, received_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(), market_id text NOT NULL, station_id text NOT NULL,
    device_id text NOT NULL, sample_id text, commodity text NOT NULL, analyte text NOT NULL,
    method text NOT NULL, strip_lot text NOT NULL, c_line float8, t_line float8, inhibition_pct float8,
    device_result text, raw jsonb NOT NULL, UNIQUE (reading_id, measured_at))"""


def _row(payload: dict[str, Any]) -> tuple[Any, ...]:
    s, a, sig = payload["sample"], payload["assay"], payload["signal"]
    return (payload["reading_id"], payload["measured_at"], datetime.now(UTC).isoformat(), payload["market_id"],
            payload["station_id"], payload["device_id"], s.get("sample_id"), s["commodity"], a["analyte"],
            a["method"], a["strip_lot"], sig.get("c_line"), sig.get("t_line"), sig.get("inhibition_pct"),
            payload.get("device_result"), json.dumps(payload, ensure_ascii=False))


def _insert_execute_values(conn: Any, table: str, batch: list[tuple[Any, ...]]) -> None:
    from psycopg2.extras import execute_values

    with conn.cursor() as cur:
        execute_values(cur, f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES %s "
                            "ON CONFLICT (reading_id, measured_at) DO NOTHING", batch, page_size=len(batch))
    conn.commit()


def _insert_copy_staging(conn: Any, table: str, batch: list[tuple[Any, ...]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(batch)
    buffer.seek(0)
    columns = ", ".join(_COLUMNS)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}_stage (LIKE {table} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS")
        cur.copy_expert(f"COPY {table}_stage ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_stage "
                    "ON CONFLICT (reading_id, measured_at) DO NOTHING")
    conn.commit()


def _insert_one_by_one(conn: Any, table: str, batch: list[tuple[Any, ...]]) -> None:
    sql = (f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
           "ON CONFLICT (reading_id, measured_at) DO NOTHING")
    with conn.cursor() as cur:
        for row in batch:
            cur.execute(sql, row)
            conn.commit()


def _time_inserts(conn: Any, table: str, rows: list[tuple[Any, ...]], batch_size: int,
                  insert: Callable[[Any, str, list[tuple[Any, ...]]], None]) -> dict[str, float]:
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE {table}")
    conn.commit()
    started = time.monotonic()
    for i in range(0, len(rows), batch_size):
        insert(conn, table, rows[i:i + batch_size])
    seconds = time.monotonic() - started
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        stored = (cur.fetchone() or (0,))[0]
    conn.commit()
    # Again: every row is now a conflict (a redelivered batch).
    started = time.monotonic()
    for i in range(0, len(rows), batch_size):
        insert(conn, table, rows[i:i + batch_size])
    redelivered_s = time.monotonic() - started
    return {"rows": len(rows), "stored": stored, "rows_per_s": round(rate(len(rows), seconds)),
            "redelivered_rows_per_s": round(rate(len(rows), redelivered_s))}


def postgres_insert(dsn: str, rows: int = 50_000, batch_size: int = 1000,
                    messages: list[tuple[str, dict[str, Any]]] | None = None) -> Figures:
    """Insert ``rows`` readings into a scratch table by each method (ON CONFLICT DO NOTHING), twice:
    new rows, then the same rows again (a redelivery: every row conflicts)."""
    from storage.db import connect

    data = [_row(p) for _, p in (messages or fleet_messages(rows))[:rows]]
    table = f"bench_readings_{uuid.uuid4().hex[:10]}"
    conn = connect(dsn, application_name="rapidtrace-bench")
    try:
        with conn.cursor() as cur:
            cur.execute(_DDL.format(table=table))
            cur.execute("SHOW server_version")
            version = (cur.fetchone() or ("?",))[0]
        conn.commit()
        figures: Figures = {"component": "postgres", "server_version": version, "batch_size": batch_size,
                            "messages": len(data)}
        figures["execute_values"] = _time_inserts(conn, table, data, batch_size, _insert_execute_values)
        figures["copy_staging_insert"] = _time_inserts(conn, table, data, batch_size, _insert_copy_staging)
        few = data[:2000]
        figures["one_row_per_commit"] = _time_inserts(conn, table, few, len(few), _insert_one_by_one)
        best = max(("execute_values", "copy_staging_insert"), key=lambda k: figures[k]["rows_per_s"])
        figures["faster_batch_method"] = best
        return figures
    finally:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.commit()
        conn.close()


# --- command line -------------------------------------------------------------------------------


def run_components(mqtt_url: str | None, kafka_bootstrap: str | None, dsn: str | None, count: int,
                   mqtt_protocol: str = "3.1.1", kafka_compression: str = "none") -> list[Figures]:
    """Every component whose address is given, on the same pre-generated readings."""
    messages = fleet_messages(count)
    results = []
    if mqtt_url:
        results.append(mqtt_throughput(mqtt_url, count, mqtt_protocol, messages=messages))
    if kafka_bootstrap:
        results.append(kafka_throughput(kafka_bootstrap, count, compression=kafka_compression, messages=messages))
    if dsn:
        results.append(postgres_insert(dsn, count, messages=messages))
    return results


def summary_line(figures: Figures) -> str:
    kind = figures["component"]
    if kind == "postgres":
        return (f"postgres: execute_values {figures['execute_values']['rows_per_s']:,} rows/s, "
                f"COPY→staging→INSERT {figures['copy_staging_insert']['rows_per_s']:,} rows/s, "
                f"one row a commit {figures['one_row_per_commit']['rows_per_s']:,} rows/s "
                f"(faster: {figures['faster_batch_method']})")
    lat = figures["latency_ms"]
    head = (f"{kind}: end-to-end {figures['end_to_end_per_s']:,} msgs/s, lost {figures['lost']}, "
            f"doubled {figures['doubled']}, latency p50 {lat['p50']} ms p99 {lat['p99']} ms")
    if kind == "mqtt":
        return head + f", publisher acked {figures['publish_acked_per_s']:,}/s"
    return (head + f", produce {figures['produce_per_s']:,}/s, backlog drain "
            f"{figures['consume_backlog_per_s']:,}/s, crc32c {figures['crc32c_accelerated']}")


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m bench.components", description=__doc__)
    parser.add_argument("--mqtt-url", default=settings.mqtt_url or "mqtt://127.0.0.1:1883")
    parser.add_argument("--mqtt-protocol", choices=("3.1.1", "5"), default="3.1.1")
    parser.add_argument("--kafka-bootstrap", default=settings.kafka_bootstrap,
                        help="host:port of a Kafka-protocol broker (skipped when unset)")
    parser.add_argument("--kafka-compression", default="none", choices=("none", "gzip", "lz4", "snappy", "zstd"))
    parser.add_argument("--dsn", default=settings.database_url or "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--skip", action="append", default=[], choices=("mqtt", "kafka", "postgres"))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    results = run_components(None if "mqtt" in args.skip else args.mqtt_url,
                             None if "kafka" in args.skip else args.kafka_bootstrap,
                             None if "postgres" in args.skip else args.dsn, args.count,
                             args.mqtt_protocol, args.kafka_compression)
    for figures in results:
        print(summary_line(figures))
    text = json.dumps(_without_nan(results), indent=2)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
