"""SQL for pass-rate statistics.

Test counts come from the hourly ``pass_rate_<dim>_hourly`` relations: on
TimescaleDB continuous aggregates (real-time), on plain PostgreSQL rollup
tables kept by a trigger (migration 0002).  Both have the same names and
columns (``bucket`` timestamptz at UTC hour starts: time_bucket there,
date_bin here; ``n_*`` bigint), so this one query answers on either path, and
it sums per (bucket, group), so it does not depend on one row per hour.  On
TimescaleDB a verdict below the aggregate's watermark (a reading an hour or
more late) is counted after the next refresh-policy run, within five minutes;
on plain PostgreSQL at once.  Closure figures
(处置率, median time to closure) come from the ``failures`` table, bucketed by
``raised_at``.  Day and week buckets are local to ``tz`` (whole-hour offsets).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.failures import share
from storage import registry
from storage.db import Connection


class GroupBy(StrEnum):
    MARKET = "market"
    STATION = "station"
    ANALYTE = "analyte"
    COMMODITY = "commodity"
    REGION = "region"
    TOWN = "town"
    VILLAGE = "village"
    GRID = "grid"


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


KEY_COLUMN = {
    GroupBy.MARKET: "market_id",
    GroupBy.STATION: "station_id",
    GroupBy.ANALYTE: "analyte",
    GroupBy.COMMODITY: "commodity",
    GroupBy.REGION: "region_code",
}
# group_by town|village|grid: the market's entry in the registry (migration 0008), not the device payload.
# Counts come from the per-market relation; a market the registry does not know groups under "".
REGISTRY_KEYS = {
    GroupBy.TOWN: "substr(r.region_code, 1, 9) || '000'",
    GroupBy.VILLAGE: "r.region_code",
    GroupBy.GRID: "r.grid_id",
}


def _group_key(group_by: GroupBy, table: str) -> str:
    if group_by in REGISTRY_KEYS:
        return (f"coalesce((SELECT {REGISTRY_KEYS[group_by]} FROM markets r "
                f"WHERE r.market_id = {table}.market_id), '')")
    return KEY_COLUMN[group_by]


def _relation(group_by: GroupBy) -> str:
    return "pass_rate_market_hourly" if group_by in REGISTRY_KEYS else f"pass_rate_{group_by.value}_hourly"


COUNTS = ("n_tests", "n_negative", "n_positive", "n_suspicious", "n_invalid", "n_verdict_mismatch", "n_cutoff_mismatch")
SCREEN_KINDS = ("positive", "suspicious")


@dataclass(frozen=True)
class StatsQuery:
    group_by: GroupBy
    bucket: Bucket
    since: datetime
    until: datetime
    tz: str = "UTC"
    markets: list[str] | None = None  # the principal's scope
    market_id: str | None = None


def _bucket_sql(bucket: Bucket, column: str) -> str:
    if bucket is Bucket.HOUR:
        return f"date_bin(INTERVAL '1 hour', {column}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    return f"date_trunc('{bucket.value}', {column}, %(tz)s)"


def _scope(q: StatsQuery, params: dict[str, Any]) -> str:
    sql = ""
    if q.markets is not None:
        sql += " AND market_id = ANY(%(markets)s)"
        params["markets"] = q.markets
    if q.market_id is not None:
        sql += " AND market_id = %(market_id)s"
        params["market_id"] = q.market_id
    return sql


def pass_rate_rows(
    conn: Connection, q: StatsQuery, limit: int, after: tuple[datetime, str] | None = None
) -> list[dict[str, Any]]:
    """One row per (bucket, group): test counts by verdict, and closure figures of screen failures."""
    params: dict[str, Any] = {
        "since": q.since,
        "until": q.until,
        "tz": q.tz,
        "limit": limit,
        "kinds": list(SCREEN_KINDS),
    }
    scope = _scope(q, params)
    relation = _relation(q.group_by)
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in COUNTS)
    page = ""
    if after is not None:
        page = "WHERE (t.bucket_start, t.grp) > (%(after_b)s, %(after_g)s)"
        params["after_b"], params["after_g"] = after
    query = f"""
        WITH tests AS (
            SELECT {_bucket_sql(q.bucket, "bucket")} AS bucket_start, {_group_key(q.group_by, relation)} AS grp, {sums}
            FROM {relation}
            WHERE bucket >= %(since)s AND bucket < %(until)s {scope}
            GROUP BY 1, 2
        ), closure AS (
            SELECT {_bucket_sql(q.bucket, "raised_at")} AS bucket_start,
                   coalesce({_group_key(q.group_by, "failures")}, '') AS grp,
                   count(*) AS n_failures, count(closed_at) AS n_closed,
                   count(*) FILTER (WHERE outcome = 'false_positive') AS n_false_positive,
                   count(*) FILTER (WHERE outcome = 'confirmed') AS n_confirmed,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - raised_at))
                       FILTER (WHERE closed_at IS NOT NULL) AS median_close_s
            FROM failures
            WHERE kind = ANY(%(kinds)s) AND raised_at >= %(since)s AND raised_at < %(until)s {scope}
            GROUP BY 1, 2
        )
        SELECT * FROM (
            SELECT coalesce(t.bucket_start, c.bucket_start) AS bucket_start, coalesce(t.grp, c.grp) AS grp,
                   {", ".join(f"coalesce(t.{c}, 0) AS {c}" for c in COUNTS)},
                   coalesce(c.n_failures, 0) AS n_failures, coalesce(c.n_closed, 0) AS n_closed,
                   coalesce(c.n_false_positive, 0) AS n_false_positive, coalesce(c.n_confirmed, 0) AS n_confirmed,
                   c.median_close_s
            FROM tests t FULL JOIN closure c ON c.bucket_start = t.bucket_start AND c.grp = t.grp
        ) AS t
        {page}
        ORDER BY bucket_start, grp
        LIMIT %(limit)s
    """
    with conn.cursor() as cur:
        cur.execute("SET LOCAL work_mem = '32MB'")  # the closure figures sort every failure of the range
        cur.execute(query, params)
        names = [d[0] for d in cur.description or ()]
        out = [shape(dict(zip(names, r, strict=True))) for r in cur.fetchall()]
    if q.group_by in (GroupBy.TOWN, GroupBy.VILLAGE):
        regions = registry.region_names(conn, (row["group"] for row in out))
        for row in out:
            row["group_name"] = regions.get(row["group"])
    return out


def shape(row: dict[str, Any]) -> dict[str, Any]:
    """The API form of one row: counts, 合格率 and 处置率."""
    valid = row["n_tests"] - row["n_invalid"]
    median = row["median_close_s"]
    return {
        "bucket_start": row["bucket_start"],
        "group": row["grp"],
        "tests": row["n_tests"],
        "valid_tests": valid,
        "negative": row["n_negative"],
        "failures_by_kind": {
            "positive": row["n_positive"],
            "suspicious": row["n_suspicious"],
            "invalid": row["n_invalid"],
            "verdict_mismatch": row["n_verdict_mismatch"],
            "cutoff_mismatch": row["n_cutoff_mismatch"],
        },
        "pass_rate": round(row["n_negative"] / valid, 6) if valid else None,
        "screen_failures": row["n_failures"],
        # outcomes of the screen failures raised in the bucket (DOMAIN.md §3): a lab-negative release
        # is a false positive, a lab positive a confirmed one
        "false_positives": row["n_false_positive"],
        "confirmed_positives": row["n_confirmed"],
        "false_positive_rate": share(row["n_false_positive"], row["n_false_positive"] + row["n_confirmed"]),
        "closed": row["n_closed"],
        "closure_rate": round(row["n_closed"] / row["n_failures"], 6) if row["n_failures"] else None,
        "median_hours_to_close": round(float(median) / 3600, 3) if median is not None else None,
    }
