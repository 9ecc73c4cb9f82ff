"""Benchmarks of issue 3: pass-rate query latency at 10 million readings, and flagger throughput.

    python -m bench.flagging [--admin-dsn DSN] [--rows 10000000] [--days 90] [--markets 25]
                             [--flagger-records 40000] [--skip-query] [--skip-flagger]

Each part works in its own scratch database on the server of ``--admin-dsn``
(default ``postgresql://postgres@127.0.0.1:5432/postgres``, or
``RT_BENCH_ADMIN_DSN``), migrated like production, and drops it at the end.

* Query: ``--rows`` verdicts spread over ``--days`` days and ``--markets``
  markets are generated in SQL (``generate_series``) through the same
  migration, so the plain-PostgreSQL rollup trigger maintains the hourly
  relations as the flagger would; then the API's own query
  (``storage.stats.pass_rate_rows``, group by market per day) is timed,
  warm, and the same answer computed straight from the verdicts table is timed
  for comparison.
* Flagger: realistic readings (DOMAIN.md §5 rates, with fault scenarios) are
  handed to ``Flagger.handle`` in batches of the consumer's batch size, each
  batch committed, and records/s measured; the reading store is measured on
  the same records for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.stack import BenchStack
from consumers.flagger import Flagger
from consumers.reading_store import ReadingStore
from consumers.testing import TestRecord, record
from ingest.route import Accepted, route
from runtime.gc_tuning import tune_gc
from runtime.ports import free_port
from schemas.settings import Settings
from simulators.faults import add_fleet_faults
from simulators.fleet import Fleet, FleetConfig
from simulators.publisher import Publisher, encode, publish_fleet
from storage.db import connect, create_database, drop_database
from storage.migrate import migrate
from storage.stats import Bucket, GroupBy, StatsQuery, pass_rate_rows
from storage.verdicts import insert_snapshots, snapshot_digest

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
END = datetime(2026, 11, 28, tzinfo=UTC)
THRESHOLDS_JSON = json.dumps(
    {
        "mode": "ratio",
        "c_min": 100.0,
        "r_pos": 0.8,
        "r_neg": 0.95,
        "t_pos": 400.0,
        "t_neg": 600.0,
        "calibration": [],
        "calibration_input": "ratio",
        "limit": None,
        "suspicious_from": None,
        "inhibition_fail_pct": 50.0,
        "inhibition_suspicious_pct": None,
        "cutoff_tolerance": 0.005,
        "entry_ids": [1],
        "layers": ["project"],
    }
)

GENERATE = """
INSERT INTO verdicts (reading_id, measured_at, received_at, market_id, station_id, device_id, analyte, commodity,
                      commodity_category, region_code, strip_lot, method, device_result, server_result, rule, reason,
                      ratio, device_cutoff, verdict_mismatch, cutoff_mismatch, thresholds_digest)
SELECT gen_random_uuid(), ts, ts + INTERVAL '2 seconds',
       'm' || (i %% %(markets)s), 'm' || (i %% %(markets)s) || '-s' || ((i / %(markets)s) %% 2),
       'dev-' || (i %% (%(markets)s * 4)),
       (ARRAY['chlorpyrifos','carbofuran','phorate','omethoate','procymidone','fenthion','carbendazim',
              'clenbuterol','ractopamine','salbutamol','malachite_green','enrofloxacin','chloramphenicol',
              'nitrofuran_aoz'])[1 + (i %% 14)],
       'commodity-' || (i %% 30), 'vegetable', (ARRAY['320412','320411','320402','320404','320413'])[1 + (i %% 5)],
       'CG-' || (i %% 40), 'colloidal_gold', r.result, r.result, 'ratio', 'bench', 0.9, 0.8, false, false,
       %(digest)s
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
CROSS JOIN LATERAL (SELECT %(start)s::timestamptz + (i * %(step)s::double precision) * INTERVAL '1 second' AS ts,
                           (hashint8(i) & 1023) AS h) AS g
CROSS JOIN LATERAL (SELECT CASE WHEN g.h < 3 THEN 'positive' WHEN g.h < 6 THEN 'suspicious'
                                WHEN g.h < 16 THEN 'invalid' ELSE 'negative' END AS result) AS r
"""

FAILURES = """
INSERT INTO failures (failure_id, dedup_key, kind, workflow, raised_at, summary, reading_id, measured_at, market_id,
                      station_id, device_id, analyte, commodity, region_code, strip_lot, subject, state, state_since,
                      due_at, closed_at)
SELECT md5(server_result || reading_id::text)::uuid, server_result || ':' || reading_id, server_result, 'screen',
       received_at, 'bench', reading_id, measured_at, market_id, station_id, device_id, analyte, commodity,
       region_code, strip_lot, device_id,
       CASE WHEN (hashtext(reading_id::text) & 15) = 0 THEN 'sale_suspended' ELSE 'closed' END, received_at,
       NULL, CASE WHEN (hashtext(reading_id::text) & 15) = 0 THEN NULL
                  ELSE received_at + ((hashtext(reading_id::text) & 255) || ' hours')::interval END
FROM verdicts WHERE server_result IN ('positive', 'suspicious')
"""

RAW_QUERY = """
SELECT date_trunc('day', measured_at AT TIME ZONE 'Asia/Shanghai') AS day, market_id, count(*),
       count(*) FILTER (WHERE server_result = 'negative'), count(*) FILTER (WHERE server_result = 'invalid')
FROM verdicts WHERE measured_at >= %s AND measured_at < %s GROUP BY 1, 2
"""


@contextmanager
def scratch_database(admin_dsn: str, tag: str) -> Iterator[str]:
    name = f"rt_bench_{tag}_{uuid.uuid4().hex[:8]}"
    dsn = create_database(admin_dsn, name)
    try:
        migrate(dsn, Settings())
        yield dsn
    finally:
        drop_database(admin_dsn, name)


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def generate(dsn: str, rows: int, days: int, markets: int, chunk: int = 1_000_000) -> float:
    start = END - timedelta(days=days)
    step = days * 86400 / rows
    conn = connect(dsn)
    started = time.perf_counter()
    thresholds = json.loads(THRESHOLDS_JSON)
    digest = snapshot_digest(thresholds)
    try:
        insert_snapshots(conn, {digest: thresholds})
        for lo in range(0, rows, chunk):
            hi = min(rows, lo + chunk) - 1
            with conn.cursor() as cur:
                cur.execute(
                    GENERATE,
                    {
                        "markets": markets,
                        "digest": digest,
                        "lo": lo,
                        "hi": hi,
                        "start": start,
                        "step": step,
                    },
                )
            conn.commit()
            print(f"  generated {hi + 1:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        with conn.cursor() as cur:
            cur.execute(FAILURES)  # the screen failures, 15/16 closed, for the closure figures
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
    return time.perf_counter() - started


def bench_query(admin_dsn: str, rows: int, days: int, markets: int) -> dict[str, Any]:
    with scratch_database(admin_dsn, "passrate") as dsn:
        print(f"generating {rows:,} verdicts over {days} days, {markets} markets ...", flush=True)
        seconds = generate(dsn, rows, days, markets)
        conn = connect(dsn)
        try:
            q = StatsQuery(GroupBy.MARKET, Bucket.DAY, END - timedelta(days=days), END, "Asia/Shanghai")
            answer = pass_rate_rows(conn, q, 100_000)
            total = sum(r["tests"] for r in answer)
            assert total == rows, f"the query counted {total} of {rows} readings"
            first = timed(lambda: pass_rate_rows(conn, q, 100_000), 1)[0]
            warm = timed(lambda: pass_rate_rows(conn, q, 100_000), 20)
            raw = timed(lambda: _raw(conn, q), 3)
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_size_pretty(pg_total_relation_size('verdicts')), "
                    "(SELECT count(*) FROM pass_rate_market_hourly), (SELECT count(*) FROM failures)"
                )
                size, hourly_rows, failures = cur.fetchone() or ("?", 0, 0)
        finally:
            conn.close()
    return {
        "rows": rows,
        "generate_s": round(seconds, 1),
        "result_rows": len(answer),
        "verdicts_size": size,
        "market_hourly_rows": hourly_rows,
        "failures": failures,
        "first_ms": round(first, 1),
        "median_ms": round(statistics.median(warm), 1),
        "p95_ms": round(sorted(warm)[18], 1),
        "raw_table_median_ms": round(statistics.median(raw), 1),
    }


def _raw(conn: Any, q: StatsQuery) -> None:
    with conn.cursor() as cur:
        cur.execute(RAW_QUERY, (q.since, q.until))
        cur.fetchall()


def readings(n: int, seed: int = 1) -> list[TestRecord]:
    """``n`` Kafka records as the bridge writes them (``ingest.route``), from a simulated fleet of 50
    readers at DOMAIN.md §5 rates with its fault scenarios (a strip lot going bad, a silent reader, a
    mismatching reader)."""
    fleet = Fleet(FleetConfig(markets=25, stations_per_market=1, readers_per_station=2, seed=seed))
    add_fleet_faults(fleet, END, silent_after=timedelta(minutes=10), bad_lot_after=200, seed=seed)
    out = []
    for i, (topic, payload) in enumerate(fleet.readings(n, END, timedelta(seconds=1))):
        routed = route(topic, encode(payload), END + timedelta(seconds=i))
        if not isinstance(routed, Accepted):
            raise RuntimeError(f"the simulated fleet made an invalid reading: {routed}")
        out.append(record("rt.readings.v1", routed.value, offset=i, key=routed.key, headers=routed.headers))
    return out


def _throughput(dsn: str, handler: Any, records: list[TestRecord], batch: int) -> float:
    conn = connect(dsn)
    try:
        started = time.perf_counter()
        for lo in range(0, len(records), batch):
            handler.handle(conn, records[lo : lo + batch])
            conn.commit()
        return len(records) / (time.perf_counter() - started)
    finally:
        conn.close()


def bench_flagger(admin_dsn: str, n: int) -> dict[str, Any]:
    records = readings(n)
    batch = Settings().consumer_batch_size
    out: dict[str, Any] = {"records": n, "batch": batch}
    with scratch_database(admin_dsn, "flagger") as dsn:
        settings = Settings(database_url=dsn)
        flagger = Flagger(settings, clock=lambda: END + timedelta(hours=1))
        out["flagger_per_s"] = round(_throughput(dsn, flagger, records, batch))
        conn = connect(dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT kind, count(*) FROM failures GROUP BY kind ORDER BY kind")
                out["failures"] = dict(cur.fetchall())
        finally:
            conn.close()
        out["redelivery_per_s"] = round(_throughput(dsn, flagger, records, batch))
        out["store_per_s"] = round(_throughput(dsn, ReadingStore(settings), records, batch))
    return out


# --- MQTT → SSE latency under fleet load -------------------------------------------------------------


def _start_sse_stack(admin_dsn: str, work: Path, judging: str = "together") -> tuple[BenchStack, int]:
    """The whole pipeline with the flagger and the API (no auth); returns the stack and the API port.

    ``judging``: ``together`` (the ``readings`` consumer stores and judges, as deployed) or
    ``separate`` (the store and the flagger as two groups)."""
    api_port = free_port()
    stack = BenchStack.start(admin_dsn, work, "sse", RT_API_AUTH="false", RT_API_PORT=str(api_port))
    stack.spawn("ingest", "ingest")
    consumers = ["readings"] if judging == "together" else ["store", "flagger"]
    stack.spawn("consume", "consume", *consumers, "deadletters")
    stack.spawn("api", "api")
    return stack, api_port


class SseListener:
    """Reads the live feed and notes when each positive's ``failure_raised`` arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.arrived: dict[str, float] = {}
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client, client.stream("GET", self.url) as answer:
            self.connected.set()
            event = ""
            for line in answer.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "failure_raised":
                    data = json.loads(line[6:])
                    if data.get("kind") == "positive" and data.get("reading_id"):
                        self.arrived.setdefault(data["reading_id"], time.time())


def _wait_for_flagger(stack: BenchStack, timeout: float = 120.0) -> None:
    """Publish a positive probe every 2 s until the flagger has judged one (groups formed)."""
    assert stack.settings.mqtt_url and stack.settings.database_url
    fleet = Fleet(FleetConfig(markets=1, positive_rate=1.0, suspicious_rate=0.0, invalid_rate=0.0, seed=7))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topic, payload = next(fleet.readings(1, datetime.now(UTC)))
        with Publisher(stack.settings.mqtt_url, "5", record_times=False) as pub:
            pub.publish(topic, encode(payload))
        for _ in range(4):
            conn = connect(stack.settings.database_url)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM verdicts")
                    if (cur.fetchone() or (0,))[0]:
                        return
            finally:
                conn.close()
            time.sleep(0.5)
    raise RuntimeError(f"the flagger judged nothing within {timeout}s; logs in {stack.work}")


def bench_sse(admin_dsn: str, rate: float, duration: float, positive_rate: float,
              judging: str = "together") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rt-bench-sse-") as tmp:
        stack, api_port = _start_sse_stack(admin_dsn, Path(tmp), judging)
        try:
            _wait_for_flagger(stack)
            listener = SseListener(f"http://127.0.0.1:{api_port}/v1/failures/stream")
            listener.thread.start()
            if not listener.connected.wait(30):
                raise RuntimeError("the SSE stream did not open")
            fleet = Fleet(
                FleetConfig(
                    markets=10, stations_per_market=3, readers_per_station=3, positive_rate=positive_rate, seed=3
                )
            )
            assert stack.settings.mqtt_url
            publisher = Publisher(stack.settings.mqtt_url, "5", max_outstanding=2000)
            report = publish_fleet(publisher.connect(), fleet, rate=rate, duration_s=duration)
            sent_at = dict(publisher.sent_at)
            positives = _positives(stack.settings.database_url or "", list(sent_at))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not set(positives) <= set(listener.arrived):
                time.sleep(0.2)
            listener.stop.set()
            latencies = sorted((listener.arrived[r] - sent_at[r]) * 1000 for r in positives if r in listener.arrived)
        finally:
            stack.stop()
    n = len(latencies)
    pick = (lambda q: round(latencies[min(n - 1, int(q * n))], 1)) if n else (lambda q: None)
    return {
        "published": report.readings,
        "rate": round(report.readings / duration),
        "positives": len(positives),
        "lost": len(positives) - n,
        "received": n,
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "max_ms": round(latencies[-1], 1) if n else None,
    }


def _positives(dsn: str, reading_ids: list[str]) -> list[str]:
    """The published readings the server judged positive (waits for the flagger to catch up)."""
    deadline = time.monotonic() + 60
    conn = connect(dsn)
    try:
        while True:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM verdicts WHERE reading_id::text = ANY(%s)", (reading_ids,))
                judged = (cur.fetchone() or (0,))[0]
                if judged >= len(reading_ids) or time.monotonic() > deadline:
                    cur.execute(
                        "SELECT reading_id::text FROM verdicts WHERE server_result = 'positive' "
                        "AND reading_id::text = ANY(%s)",
                        (reading_ids,),
                    )
                    return [r[0] for r in cur.fetchall()]
            conn.rollback()
            time.sleep(0.5)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--admin-dsn", default=os.environ.get("RT_BENCH_ADMIN_DSN", DEFAULT_ADMIN))
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--markets", type=int, default=25)
    parser.add_argument("--flagger-records", type=int, default=40_000)
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument("--skip-flagger", action="store_true")
    parser.add_argument("--sse", action="store_true", help="also measure MQTT → SSE latency under fleet load")
    parser.add_argument("--sse-rate", type=float, default=1000.0, help="fleet readings/s during the SSE phase")
    parser.add_argument("--sse-duration", type=float, default=30.0)
    parser.add_argument("--judging", choices=("together", "separate"), default="together",
                        help="SSE phase: the readings consumer stores and judges, or store and flagger apart")
    parser.add_argument(
        "--sse-positive-rate",
        type=float,
        default=0.01,
        help="fleet positive share during the SSE phase (more samples than the 0.3%% default)",
    )
    args = parser.parse_args(argv)
    tune_gc(Settings().gc_gen0_threshold)  # as `rapidtrace consume` does (RT_GC_GEN0_THRESHOLD)
    if not args.skip_flagger:
        result = bench_flagger(args.admin_dsn, args.flagger_records)
        print(
            f"flagger: {result['flagger_per_s']:,} records/s judged and flagged "
            f"(batch {result['batch']}, {result['records']:,} records, failures {result['failures']}); "
            f"redelivered batches {result['redelivery_per_s']:,}/s; "
            f"reading store on the same records {result['store_per_s']:,}/s",
            flush=True,
        )
    if args.sse:
        sse = bench_sse(args.admin_dsn, args.sse_rate, args.sse_duration, args.sse_positive_rate, args.judging)
        print(
            f"MQTT → SSE for positives while the fleet published {sse['rate']:,} readings/s "
            f"({sse['published']:,} readings, {sse['positives']} positives, {sse['received']} on the stream): "
            f"p50 {sse['p50_ms']} ms, p95 {sse['p95_ms']} ms, p99 {sse['p99_ms']} ms, max {sse['max_ms']} ms",
            flush=True,
        )
    if not args.skip_query:
        result = bench_query(args.admin_dsn, args.rows, args.days, args.markets)
        print(
            f"pass-rate by market per day, {args.days} days, {result['rows']:,} readings "
            f"({result['result_rows']} rows answered, verdicts {result['verdicts_size']}, "
            f"{result['market_hourly_rows']:,} hourly rollup rows, {result['failures']:,} screen failures): "
            f"first {result['first_ms']} ms, "
            f"warm median {result['median_ms']} ms, p95 {result['p95_ms']} ms; "
            f"same answer from the raw verdicts table: {result['raw_table_median_ms']} ms "
            f"(generation took {result['generate_s']} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
