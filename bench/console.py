"""Console render times on a big database: fill N readings (default 10 M), then time every page.

    python -m bench.console --admin-dsn postgresql://postgres@127.0.0.1:5432/postgres [--readings 10000000]

A fresh database is created (and dropped at the end unless ``--keep``), migrated, and filled with
``generate_series`` in chunks of a million: readings and their verdicts over 90 days across the
simulated district's 47 markets (3 readers each; 0.5 % positive, 1 % invalid), the hourly rollups
(kept by the plain path's statement trigger as on a live system), a screen failure per positive
(closed unless raised in the last two days) with its history, device activity, and the registry.
Pages are then requested in-process (the ASGI app, no network) and timed server-side: each page
``--repeat`` times after one warm-up; the median and the worst are printed. Bench-only SQL lives
here: it builds synthetic data, it is not part of the product.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from storage.db import Connection, connect, create_database, drop_database

CHUNK = 1_000_000
DAYS = 90
MARKETS = 47
TOWNS = 10
COUNTY = "320412"

FILL_READINGS = """
WITH r AS (
INSERT INTO readings (reading_id, measured_at, received_at, market_id, station_id, device_id, sample_id, commodity,
                      commodity_category, vendor_id, certificate_no, lot_code, analyte, method, method_standard,
                      strip_lot, cutoff_ratio, c_line, t_line, device_result, operator_id, firmware, raw)
SELECT md5(i::text || 'rt')::uuid, %(end)s - (%(n)s - i) * %(step)s * INTERVAL '1 second',
       %(end)s - (%(n)s - i) * %(step)s * INTERVAL '1 second' + INTERVAL '2 seconds',
       'BM-M' || lpad((i %% 47 + 1)::text, 2, '0'), 's1',
       'BM-M' || lpad((i %% 47 + 1)::text, 2, '0') || '-d' || (i %% 3),
       'S' || i, (ARRAY['韭菜','豇豆','芹菜','菠菜','黄瓜','番茄','白菜','生菜'])[i %% 8 + 1], 'vegetable',
       'stall-' || (i %% 40), NULL, 'L' || (i %% 5000),
       (ARRAY['chlorpyrifos','carbofuran','omethoate','procymidone','acetamiprid','methomyl'])[i %% 6 + 1],
       'colloidal_gold', 'KJ 201710', 'CG' || (i %% 20), 0.8, 1000, CASE WHEN i %% 200 = 0 THEN 450 ELSE 1200 END,
       CASE WHEN i %% 200 = 0 THEN 'positive' WHEN i %% 100 = 1 THEN 'invalid' ELSE 'negative' END, 'op-1', '2.4.1',
       '{}'::jsonb
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
RETURNING *)
INSERT INTO verdicts (reading_id, measured_at, received_at, market_id, station_id, device_id, analyte, commodity,
                      commodity_category, strip_lot, method, device_result, server_result, rule, reason, ratio,
                      device_cutoff, verdict_mismatch, cutoff_mismatch, thresholds_digest)
SELECT reading_id, measured_at, received_at, market_id, station_id, device_id, analyte, commodity,
       commodity_category, strip_lot, method, device_result, device_result, 'ratio', 'bench', t_line / c_line, 0.8,
       false, false, 'bench'
FROM r
"""

FILL_REST = """
INSERT INTO reading_ids (reading_id, measured_at) SELECT reading_id, measured_at FROM readings;
INSERT INTO failures (failure_id, dedup_key, kind, workflow, raised_at, summary, details, reading_id, measured_at,
                      market_id, station_id, device_id, analyte, commodity, commodity_category, strip_lot, sample_id,
                      vendor_id, lot_code, state, state_since, due_at, closed_at, first_seen, last_seen, outcome)
SELECT md5(reading_id::text || 'f')::uuid, 'positive:' || reading_id, 'positive', 'screen', measured_at,
       'positive strip: ' || commodity || ' / ' || analyte || ' at ' || market_id || '/s1', '{}', reading_id,
       measured_at, market_id, station_id, device_id, analyte, commodity, commodity_category, strip_lot, sample_id,
       vendor_id, lot_code,
       CASE WHEN measured_at > %(recent)s THEN 'sale_suspended' ELSE 'closed' END,
       measured_at + INTERVAL '1 minute',
       CASE WHEN measured_at > %(recent)s THEN measured_at + INTERVAL '1 day' END,
       CASE WHEN measured_at > %(recent)s THEN NULL ELSE measured_at + INTERVAL '30 hours' END,
       measured_at, measured_at,
       CASE WHEN measured_at > %(recent)s THEN NULL ELSE 'destroyed' END
FROM readings WHERE device_result = 'positive';
INSERT INTO failure_events (failure_id, action, from_state, to_state, actor, role, at, note)
SELECT failure_id, a.action, a.from_state, a.to_state, 'flagger', 'system', raised_at + a.after, a.note
FROM failures, (VALUES ('raised', NULL, 'screen_positive', INTERVAL '0', NULL),
                       ('suspend_sale', 'screen_positive', 'sale_suspended', INTERVAL '1 second', 'at once')) AS
     a(action, from_state, to_state, after, note)
ORDER BY raised_at, a.after;
INSERT INTO device_activity (device_id, market_id, station_id, first_seen, last_measured_at, last_received_at, tests,
                             negative, positive, suspicious, invalid, verdict_mismatch)
SELECT device_id, min(market_id), min(station_id), min(measured_at), max(measured_at), max(received_at), count(*),
       count(*) FILTER (WHERE server_result = 'negative'), count(*) FILTER (WHERE server_result = 'positive'), 0,
       count(*) FILTER (WHERE server_result = 'invalid'), 0
FROM verdicts GROUP BY device_id;
INSERT INTO regions (code, level, name_zh)
SELECT %(county)s || lpad(t::text, 3, '0') || '000', 'town', '镇' || t FROM generate_series(101, 100 + %(towns)s) t;
INSERT INTO markets (market_id, name_zh, market_kind, region_code, time_zone, updated_by)
SELECT 'BM-M' || lpad(m::text, 2, '0'), '市场' || m, 'farmers',
       %(county)s || lpad((101 + m %% %(towns)s)::text, 3, '0') || '000', 'Asia/Shanghai', 'bench'
FROM generate_series(1, 47) m;
ANALYZE;
"""


def fill(conn: Connection, n: int, end: datetime) -> None:
    step = DAYS * 86400 / n
    started = time.monotonic()
    for lo in range(1, n + 1, CHUNK):
        hi = min(n, lo + CHUNK - 1)
        with conn.cursor() as cur:
            cur.execute(FILL_READINGS, {"lo": lo, "hi": hi, "n": n, "step": step, "end": end})
        conn.commit()
        print(f"  {hi:>11,} readings and verdicts  ({time.monotonic() - started:.0f}s)", flush=True)
    with conn.cursor() as cur:
        cur.execute(FILL_REST, {"recent": end - timedelta(days=2), "county": COUNTY, "towns": TOWNS})
    conn.commit()
    print(f"  failures, events, devices, registry  ({time.monotonic() - started:.0f}s)", flush=True)


def _csrf_login(client: object, token: str) -> None:
    import re

    page = client.get("/console/login")  # type: ignore[attr-defined]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    r = client.post("/console/login", data={"token": token, "csrf": csrf.group(1)})  # type: ignore[attr-defined]
    assert r.status_code == 303, r.text


def time_pages(dsn: str, repeat: int, now: datetime) -> list[tuple[str, float, float, int]]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from schemas.settings import Settings
    from storage.tokens import issue_token

    conn = connect(dsn)
    try:
        regulator = issue_token(conn, name="bench regulator", role="regulator", actor="bench",
                                rate_per_minute=100_000).token
        operator = issue_token(conn, name="bench operator", role="operator", markets=["BM-M07"], actor="bench",
                               rate_per_minute=100_000).token
        with conn.cursor() as cur:
            cur.execute("SELECT failure_id FROM failures WHERE market_id = 'BM-M07' ORDER BY raised_at DESC LIMIT 1")
            row = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
    assert row is not None
    app = create_app(Settings(database_url=dsn, api_auth=True), clock=lambda: now)
    month = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    pages = [
        ("operator", "/console/"),
        ("operator", f"/console/failures/{row[0]}"),
        ("regulator", "/console/"),
        ("regulator", "/console/district"),
        ("regulator", "/console/district?group=market&since=" + (now - timedelta(days=29)).strftime("%Y-%m-%d")),
        ("regulator", "/console/district?group=analyte&since=" + (now - timedelta(days=89)).strftime("%Y-%m-%d")),
        ("regulator", "/console/district/thresholds"),
        ("regulator", "/console/district/deadletters"),
        ("regulator", "/console/public"),
        ("regulator", f"/console/district/report?month={month}&format=xlsx"),
    ]
    results = []
    jars = {}
    client = TestClient(app, follow_redirects=False)
    client.__enter__()
    try:
        for role, token in (("operator", operator), ("regulator", regulator)):
            client.cookies.clear()
            _csrf_login(client, token)
            jars[role] = dict(client.cookies)
        for role, path in pages:
            client.cookies.clear()
            client.cookies.update(jars[role])
            assert client.get(path).status_code == 200, path  # warm-up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            results.append((f"{role:9} {path}", statistics.median(times), max(times), len(response.content)))
    finally:
        client.__exit__(None, None, None)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n")[0])
    parser.add_argument("--admin-dsn", required=True, help="a PostgreSQL DSN allowed to CREATE DATABASE")
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the filled database")
    parser.add_argument("--dsn", help="time an already filled database instead of filling one")
    args = parser.parse_args(argv)
    now = datetime.now(UTC).replace(microsecond=0)
    name = f"rt_bench_console_{int(time.time())}"
    dsn = args.dsn
    if dsn is None:
        from schemas.settings import Settings
        from storage.migrate import migrate

        dsn = create_database(args.admin_dsn, name)
        migrate(dsn, Settings())
        print(f"filling {args.readings:,} readings into {name}", flush=True)
        conn = connect(dsn)
        try:
            fill(conn, args.readings, now - timedelta(minutes=5))
        finally:
            conn.close()
    try:
        print(f"{'page':78} {'median ms':>10} {'max ms':>8} {'bytes':>9}")
        for page, median, worst, size in time_pages(dsn, args.repeat, now):
            print(f"{page:78} {median:10.1f} {worst:8.1f} {size:9,}", flush=True)
    finally:
        if args.dsn is None and not args.keep:
            drop_database(args.admin_dsn, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
