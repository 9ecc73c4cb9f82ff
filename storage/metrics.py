"""What ``GET /metrics`` reads from the database on a scrape: readings stored, dead letters by code."""

from __future__ import annotations

from storage.db import Connection

#: Below this the readings are counted exactly; above it the planner's estimate stands.
EXACT_BELOW = 100_000


def readings_count(conn: Connection) -> int:
    """A scrape must not scan millions of rows: the planner's estimate (TimescaleDB's for a
    hypertable), and an exact count only while the table is small."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        if cur.fetchone():
            cur.execute("SELECT approximate_row_count('readings')")
        else:
            cur.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'readings'::regclass")
        found = cur.fetchone()
        estimate = int(found[0]) if found else 0
        if estimate < EXACT_BELOW:
            cur.execute("SELECT count(*) FROM readings")
            found = cur.fetchone()
            estimate = int(found[0]) if found else 0
    return estimate


def deadletter_counts(conn: Connection) -> dict[str, int]:
    """Dead letters stored, by code."""
    with conn.cursor() as cur:
        cur.execute("SELECT code, count(*) FROM deadletters GROUP BY code")
        return {str(code): int(n) for code, n in cur.fetchall()}
