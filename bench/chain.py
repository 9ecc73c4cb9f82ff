"""Certificate chain benchmark: bulk load, API query latencies, chain consumer throughput.

``python -m bench.chain [--certificates 1000000] [--consumer 30000]`` on a scratch
database of the PostgreSQL server at ``--admin-dsn`` (dropped afterwards) and a
Tansu broker it starts (or ``--kafka host:port``):

1. load time of N simulated certificates (bulk COPY, digests computed as the consumer does);
2. readings sampling stall lots (so recall scopes have rapid tests);
3. p50/p99 of ``/trace`` up and down, ``/recall-scope`` and ``/verify`` of 8-hop chains,
   through the API (FastAPI TestClient in this process, real database);
4. chain consumer throughput: M more certificates produced to Kafka first, then drained by
   the real consumer loop (``ChainStore``) with digests, parent checks and out-of-order holding;
   and, to tell the broker's share apart, the same handler fed the same partition-ordered batches
   directly (``handler_only``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg2

from bench.stats import percentiles, rate
from consumers.chain_store import ChainStore
from consumers.runner import ConsumerLoop
from schemas.settings import Settings
from simulators.certificates import DistrictShape, district
from simulators.chain_load import bulk_load, publish
from storage import chain_bulk
from storage.copy_text import copy_buffer
from storage.db import Connection, connect, create_database, drop_database
from storage.migrate import migrate

Figures = dict[str, Any]
READING_COLUMNS = ("reading_id", "measured_at", "received_at", "market_id", "station_id", "device_id", "commodity",
                   "certificate_no", "lot_code", "analyte", "method", "strip_lot", "c_line", "t_line",
                   "device_result", "raw")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _tap(records: Iterator[dict[str, Any]], stall_lots: list[dict[str, Any]], keep: int,
         seed: int = 7) -> Iterator[dict[str, Any]]:
    """Pass ``records`` through, keeping a uniform sample of ``keep`` stall lots (reservoir sampling: a district's
    millions of stall lots need not stay in memory for the readings that sample a few of them)."""
    rng = random.Random(seed)
    seen = 0
    for rec in records:
        if rec["location"]["stall_id"]:
            seen += 1
            if len(stall_lots) < keep:
                stall_lots.append(rec)
            else:
                slot = rng.randrange(seen)
                if slot < keep:
                    stall_lots[slot] = rec
        yield rec


def load_phase(conn: Connection, n: int, keep: int) -> tuple[Figures, list[dict[str, Any]], dict[str, int]]:
    """COPY into keyless tables, then build the keys, foreign keys and indexes once (timed apart)."""
    stall_lots: list[dict[str, Any]] = []
    started = time.perf_counter()
    chain_bulk.drop_indexes(conn)
    state = bulk_load(conn, _tap(district(n, seed=1), stall_lots, keep))
    copied = time.perf_counter()
    chain_bulk.create_indexes(conn)
    seconds = time.perf_counter() - started
    figures = {"certificates": state.loaded, "seconds": round(seconds, 1),
               "copy_seconds": round(copied - started, 1), "index_seconds": round(seconds - (copied - started), 1),
               "per_second": round(rate(state.loaded, seconds)), "max_depth": max(state.depths.values())}
    return figures, stall_lots, state.depths


def readings_phase(conn: Connection, stall_lots: list[dict[str, Any]], count: int) -> list[str]:
    """``count`` readings of random stall lots (0.3% positive); returns their ids."""
    rng = random.Random(3)
    rows, ids = [], []
    for lot in rng.sample(stall_lots, k=min(count, len(stall_lots))):
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        positive = rng.random() < 0.003
        at = lot["issued_at"]
        rows.append((rid, at, at, lot["location"]["market_id"], "st-1", "dev-1", lot["product"]["name"],
                     lot["certificate_no"], lot.get("lot_code"), "chlorpyrifos", "colloidal_gold", "CG1", 1500.0,
                     300.0 if positive else 1490.0, "positive" if positive else "negative", "{}"))
        ids.append(rid)
    with conn.cursor() as cur:
        cur.copy_expert(f"COPY readings ({', '.join(READING_COLUMNS)}) FROM STDIN", copy_buffer(rows))
        cur.execute("INSERT INTO reading_ids (reading_id, measured_at) SELECT reading_id, measured_at FROM readings "
                    "ON CONFLICT DO NOTHING")
    conn.commit()
    return ids


def settle(conn: Connection) -> float:
    """VACUUM ANALYZE and CHECKPOINT after the bulk load, as autovacuum would have long before any
    real consumer ran (otherwise the later phases measure the vacuum); returns the seconds taken."""
    started = time.perf_counter()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE)")
            try:
                cur.execute("CHECKPOINT")
            except psycopg2.Error as exc:  # not a superuser: the server checkpoints on its own
                _log(f"no CHECKPOINT: {exc}")
    finally:
        conn.autocommit = False
    return time.perf_counter() - started


def _timed(client: Any, paths: list[str]) -> Figures:
    times = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
    return {k: round(v * 1000, 1) if k != "n" else int(v) for k, v in percentiles(times).items()}


@dataclass(frozen=True)
class Samples:
    """What the query phase asks for: random records, origins, 8-hop records and readings."""

    any: list[str]
    origins: list[str]
    eight_hops: list[str]
    readings: list[str]


def pick_samples(depths: dict[str, int], reading_ids: list[str], samples: int) -> Samples:
    rng = random.Random(5)

    def pick(pool: list[str]) -> list[str]:
        return rng.sample(pool, min(samples, len(pool)))

    return Samples(pick(list(depths)), pick([n for n, d in depths.items() if d == 0]),
                   pick([n for n, d in depths.items() if d == 8]), pick(reading_ids))


def query_phase(dsn: str, samples: Samples) -> Figures:
    from fastapi.testclient import TestClient

    from api.app import create_app

    any_sample, origins, eight_hops, recalls = samples.any, samples.origins, samples.eight_hops, samples.readings
    with TestClient(create_app(Settings(database_url=dsn, api_auth=False))) as client:
        _timed(client, [f"/v1/certificates/{n}/trace?direction=both" for n in any_sample[:20]])  # warm up
        return {
            "trace_up_ms": _timed(client, [f"/v1/certificates/{n}/trace?direction=up" for n in any_sample]),
            "trace_down_ms": _timed(client, [f"/v1/certificates/{n}/trace?direction=down" for n in any_sample]),
            "trace_down_from_origin_ms": _timed(client, [f"/v1/certificates/{n}/trace?direction=down"
                                                         for n in origins]),
            "recall_scope_ms": _timed(client, [f"/v1/readings/{r}/recall-scope" for r in recalls]),
            "verify_8_hops_ms": _timed(client, [f"/v1/certificates/{n}/verify" for n in eight_hops]),
        }


def _ms(times: list[float]) -> Figures:
    return {k: round(v * 1000, 1) if k != "n" else int(v) for k, v in percentiles(times).items()}


def province_phase(dsn: str, samples: Samples, partitions: int) -> Figures:
    """The same records hash-partitioned as a province would hold them (``partitions`` partitions per
    table): build time, size, and trace walks (walk + node lookups, in SQL) up and down."""
    conn = connect(dsn)
    try:
        started = time.perf_counter()
        chain_bulk.create_province_layout(conn, partitions)
        built = time.perf_counter() - started
        size = chain_bulk.table_bytes(conn, ["province_certificates", "province_links_up", "province_links_down"])
        out: Figures = {"partitions": partitions, "build_seconds": round(built, 1),
                        **{f"{t}_mb": round(b / 2**20) for t, b in size.items()}}
        ways: tuple[Literal["up", "down"], ...] = ("up", "down")
        for way in ways:
            chain_bulk.walk_partitioned(conn, samples.any[0], way, 16, 5001)
            conn.rollback()
            times = []
            for number in samples.any:
                t0 = time.perf_counter()
                chain_bulk.walk_partitioned(conn, number, way, 16, 5001)
                times.append(time.perf_counter() - t0)
                conn.rollback()
            out[f"trace_{way}_ms"] = _ms(times)
        if samples.eight_hops:
            plan = chain_bulk.explain_partitioned_walk(conn, samples.eight_hops[0], "up")
            scans = [line.strip() for line in plan.splitlines() if " on province_links_up_" in line]
            out["up_8_hops_partition_probes"] = {
                "partitions_in_plan": len(scans),
                "never_executed": sum("never executed" in line for line in scans),
                "first_scan": scans[0].split(" on ")[0] if scans else None}
            conn.rollback()
        return out
    finally:
        conn.close()


def partition_order(values: list[tuple[bytes, str]], partitions: int = 3, poll: int = 2000
                    ) -> list[list[tuple[bytes, str]]]:
    """Batches as a consumer of a keyed topic sees them: each poll drains one partition's next records,
    so children often come before their parents (held, then released)."""
    parts: list[list[tuple[bytes, str]]] = [[] for _ in range(partitions)]
    for value in values:
        number = json.loads(value[0])["certificate_no"]
        parts[zlib.crc32(number.encode()) % partitions].append(value)
    batches = []
    for start in range(0, max(len(p) for p in parts), poll):
        batches += [p[start:start + poll] for p in parts if p[start:start + poll]]
    return batches


def handler_phase(dsn: str, n: int, seed: int = 3) -> Figures:
    """The chain consumer's handler alone (no broker): the same batches, partition order, one commit each."""
    values = [(json.dumps(r, ensure_ascii=False).encode(), "bench") for r in
              district(n, seed=seed, shape=DistrictShape(prefix="HDL"))]
    batches = partition_order(values)
    store = ChainStore(Settings(database_url=dsn))
    conn = connect(dsn)
    try:
        started = time.perf_counter()
        accepted = 0
        for batch in batches:
            accepted += store.store(conn, batch).accepted
            conn.commit()
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return {"certificates": n, "accepted": accepted, "per_second": round(rate(accepted, seconds)),
            "seconds": round(seconds, 1)}


def _count(dsn: str, prefix: str) -> int:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM certificates WHERE certificate_no LIKE %s", (prefix + "%",))
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()


def consumer_phase(dsn: str, bootstrap: str, n: int, seed: int = 2, batch_size: int = 2000) -> Figures:
    from kafka import KafkaProducer

    from runtime.kafka_topics import ensure_topics

    tag = uuid.uuid4().hex[:8]
    settings = Settings(database_url=dsn, kafka_bootstrap=bootstrap, topic_certificates=f"bench.cert.{tag}",
                        topic_deadletter=f"bench.dead.{tag}", consumer_group_prefix=f"bench{tag}",
                        kafka_max_poll_interval_ms=10000, kafka_session_timeout_ms=6000,
                        consumer_batch_size=batch_size)
    ensure_topics(bootstrap, [settings.topic_certificates, settings.topic_deadletter], partitions=3, replication=1)
    shape = DistrictShape(prefix="KAF")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024)
    try:
        publish(producer, settings.topic_certificates, district(n, seed=seed, shape=shape))
    finally:
        producer.close()
    prefix = f"KAF-{shape.region_code}-{seed}-"
    stop = threading.Event()
    loop = ConsumerLoop(ChainStore(settings), settings, stop)
    thread = threading.Thread(target=loop.run, name="chain-consumer", daemon=True)
    started = time.perf_counter()
    thread.start()
    first_at, first_count, count = None, 0, 0
    deadline = started + max(120.0, n / 200)
    while count < n and time.perf_counter() < deadline and thread.is_alive():
        time.sleep(0.1)
        count = _count(dsn, prefix)
        if first_at is None and count:
            first_at, first_count = time.perf_counter(), count
    ended = time.perf_counter()
    stop.set()
    thread.join(timeout=30)
    held = _scalar(dsn, "SELECT count(*) FROM certificate_held")
    drained = ended - (first_at or ended)
    return {"certificates": n, "stored": count, "held_left": held,
            "per_second": round(rate(count - first_count, drained)) if first_at else 0,
            "seconds_draining": round(drained, 1),
            "seconds_including_group_join": round(ended - started, 1)}


def _scalar(dsn: str, query: str) -> Any:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def _kafka(bootstrap: str | None) -> tuple[str, Any]:
    if bootstrap:
        return bootstrap, lambda: None
    from runtime.embedded import EmbeddedKafka
    from runtime.ports import free_port

    work = Path(tempfile.mkdtemp(prefix="rt-bench-chain-"))
    kafka = EmbeddedKafka(free_port(), work).start()

    def stop() -> None:
        kafka.stop()
        shutil.rmtree(work, ignore_errors=True)

    return kafka.bootstrap, stop


def setup(dsn: str, args: argparse.Namespace, figures: Figures) -> Samples:
    """Load, add readings, settle; keep only the samples (a process holding millions of objects
    pays for them in every garbage collection, which would slow the phases measured next)."""
    conn = connect(dsn)
    try:
        _log(f"loading {args.certificates:,} certificates ...")
        figures["load"], stall_lots, depths = load_phase(conn, args.certificates, args.readings)
        _log(f"load: {figures['load']}")
        reading_ids = readings_phase(conn, stall_lots, args.readings)
        figures["readings"] = len(reading_ids)
        figures["load"]["vacuum_analyze_seconds"] = round(settle(conn), 1)
        figures["size"] = {"database_mb": round(chain_bulk.database_bytes(conn) / 2**20),
                           **{f"{t}_mb": round(b / 2**20) for t, b in
                              chain_bulk.table_bytes(conn, ["certificates", "certificate_links"]).items()}}
        _log(f"size: {figures['size']}")
        return pick_samples(depths, reading_ids, args.samples)
    finally:
        conn.close()


def run(args: argparse.Namespace) -> Figures:
    name = f"rt_bench_chain_{uuid.uuid4().hex[:8]}"
    dsn = create_database(args.admin_dsn, name)
    figures: Figures = {"database": name}
    try:
        migrate(dsn, Settings())
        samples = setup(dsn, args, figures)
        gc.collect()
        figures["queries"] = query_phase(dsn, samples)
        _log(f"queries: {figures['queries']}")
        if args.partitions:
            figures["province_layout"] = province_phase(dsn, samples, args.partitions)
            _log(f"province layout: {figures['province_layout']}")
        if args.consumer:
            figures["handler_only"] = handler_phase(dsn, args.consumer)
            _log(f"handler only: {figures['handler_only']}")
            bootstrap, stop_kafka = _kafka(args.kafka)
            try:
                figures["consumer"] = consumer_phase(dsn, bootstrap, args.consumer)
            finally:
                stop_kafka()
            _log(f"consumer: {figures['consumer']}")
    finally:
        drop_database(args.admin_dsn, name)
    return figures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=1_000_000, help="certificates to bulk load")
    parser.add_argument("--consumer", type=int, default=30_000, help="certificates through Kafka (0: skip)")
    parser.add_argument("--readings", type=int, default=64_000, help="readings sampling stall lots")
    parser.add_argument("--samples", type=int, default=500, help="requests per query kind")
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--kafka", default=None, help="bootstrap of a running broker (default: start Tansu)")
    parser.add_argument("--partitions", type=int, default=0,
                        help="also measure the province layout with this many hash partitions per table (0: skip)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    figures = run(args)
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

