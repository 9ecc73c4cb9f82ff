"""SQL for pass-rate statistics, per group and bucket, and per strip lot.

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

from domain.failures import quality_figures
from domain.pass_rate import shape
from domain.workflow import SCREEN_KIND_VALUES
from storage import registry
from storage.db import Connection, dict_rows
from storage.failures import outcome_counts
from storage.where import Where


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
        "kinds": list(SCREEN_KIND_VALUES),
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
        out = [shape(r) for r in dict_rows(cur)]
    if q.group_by in (GroupBy.TOWN, GroupBy.VILLAGE):
        regions = registry.region_names(conn, (row["group"] for row in out))
        for row in out:
            row["group_name"] = regions.get(row["group"])
    return out


@dataclass(frozen=True)
class StripLotFilter:
    since: datetime
    until: datetime
    markets: list[str] | None = None
    market_id: str | None = None
    analyte: str | None = None


LOT_COUNTS = ("n_tests", "n_negative", "n_positive", "n_suspicious", "n_invalid", "n_verdict_mismatch")


def list_strip_lots(
    conn: Connection, f: StripLotFilter, limit: int, after: tuple[str, str] | None
) -> list[dict[str, Any]]:
    """Per (analyte, strip lot) over [since, until): tests by verdict from the hourly strip-lot relation
    (a continuous aggregate on TimescaleDB, a trigger-kept rollup on plain PostgreSQL: the same SQL),
    false positives and confirmed positives from the failures of readings measured in the range."""
    where = Where().between("bucket", f.since, f.until).equal({"market_id": f.market_id, "analyte": f.analyte})
    where.markets(f.markets).after(("analyte", "strip_lot"), after)
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in LOT_COUNTS)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT analyte, strip_lot, {sums} FROM pass_rate_strip_lot_hourly {where.sql()} "
            "GROUP BY analyte, strip_lot ORDER BY analyte, strip_lot LIMIT %s",
            [*where.params, limit],
        )
        found = dict_rows(cur)
    keys = [(r["analyte"], r["strip_lot"]) for r in found]
    outcomes = outcome_counts(conn, "strip_lot", keys, f.since, f.until, f.markets, f.market_id)
    out = []
    for r in found:
        got = outcomes.get((r["analyte"], r["strip_lot"]), {})
        fp, confirmed = got.get("false_positives", 0), got.get("confirmed", 0)
        out.append({
            "analyte": r["analyte"], "strip_lot": r["strip_lot"], "tests": r["n_tests"], "negative": r["n_negative"],
            "positive": r["n_positive"], "suspicious": r["n_suspicious"], "invalid": r["n_invalid"],
            "verdict_mismatch": r["n_verdict_mismatch"], "false_positives": fp, "confirmed_positives": confirmed,
            **quality_figures(r["n_tests"], r["n_invalid"], fp, confirmed),
        })
    return out
