"""SQL the console needs beyond the API's queries: counts by kind, range totals with medians, the month report.

Every query takes the principal's market scope (``markets``: None for all) and answers one page
in one statement, never one query per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.workflow import SCREEN_KIND_VALUES
from storage.db import Connection, dict_rows

#: Group keys of the district table: a trusted column of ``pass_rate_<dim>_hourly`` and ``failures``...
GROUP_COLUMNS = {"town": "", "village": "", "grid": "", "market": "market_id", "analyte": "analyte",
                 "commodity": "commodity"}
#: ... or the market's entry in the registry (migration 0008), as ``GET /v1/stats/pass-rate?group_by=`` does:
#: counts from the per-market relation, a market the registry does not know under "".
REGISTRY_KEYS = {"town": "substr(r.region_code, 1, 9) || '000'", "village": "r.region_code", "grid": "r.grid_id"}


def _group_key(group: str, table: str) -> str:
    """The group's key over ``table`` LEFT JOINed to ``markets r`` (registry groups) or the table's own column."""
    if group in REGISTRY_KEYS:
        return f"coalesce({REGISTRY_KEYS[group]}, '')"
    return f"{table}.{GROUP_COLUMNS[group]}"


def _relation(group: str) -> str:
    return "pass_rate_market_hourly" if group in REGISTRY_KEYS else f"pass_rate_{group}_hourly"


def _scope(markets: list[str] | None, params: dict[str, Any], column: str = "market_id") -> str:
    if markets is None:
        return ""
    params["markets"] = markets
    return f" AND {column} = ANY(%(markets)s)"


def open_failures_by_kind(conn: Connection, markets: list[str] | None) -> dict[str, int]:
    params: dict[str, Any] = {}
    scope = _scope(markets, params)
    with conn.cursor() as cur:
        cur.execute(f"SELECT kind, count(*) FROM failures WHERE closed_at IS NULL {scope} GROUP BY kind", params)
        return {str(k): int(n) for k, n in cur.fetchall()}


def open_failures_at(conn: Connection, markets: list[str] | None, now: datetime) -> dict[str, int]:
    """Open failures, those past their step's deadline, and those due within the hour."""
    params: dict[str, Any] = {"now": now}
    scope = _scope(markets, params)
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT count(*),
                       count(*) FILTER (WHERE due_at < %(now)s),
                       count(*) FILTER (WHERE due_at >= %(now)s AND due_at < %(now)s + INTERVAL '1 hour')
                  FROM failures WHERE closed_at IS NULL {scope}""",
            params,
        )
        row = cur.fetchone()
    assert row is not None
    return {"open": int(row[0]), "overdue": int(row[1]), "due_soon": int(row[2])}


@dataclass(frozen=True)
class RangeQuery:
    group: str  # a key of GROUP_COLUMNS
    since: datetime
    until: datetime
    markets: list[str] | None = None


def range_totals(conn: Connection, q: RangeQuery) -> list[dict[str, Any]]:
    """Per group over the whole range: tests by verdict, screen failures, closed ones, median time to close.

    Test counts come from the same hourly relations as ``GET /v1/stats/pass-rate`` (so sums agree);
    the median is over the range, which summing daily rows cannot give.
    """
    relation = _relation(q.group)
    params: dict[str, Any] = {"since": q.since, "until": q.until, "kinds": list(SCREEN_KIND_VALUES)}
    scope = _scope(q.markets, params)
    f_scope = _scope(q.markets, params, "f.market_id")
    sums = ("sum(n_tests)::bigint AS tests, sum(n_negative)::bigint AS negative, sum(n_invalid)::bigint AS invalid, "
            "sum(n_positive)::bigint AS positive, sum(n_suspicious)::bigint AS suspicious")
    if q.group in REGISTRY_KEYS:  # per market first (a few thousand rows), then to the registry's groups
        tests = f"""
            SELECT {_group_key(q.group, "p")} AS grp, sum(tests)::bigint AS tests, sum(negative)::bigint AS negative,
                   sum(invalid)::bigint AS invalid, sum(positive)::bigint AS positive,
                   sum(suspicious)::bigint AS suspicious
              FROM (SELECT market_id, {sums} FROM {relation}
                     WHERE bucket >= %(since)s AND bucket < %(until)s {scope} GROUP BY market_id) p
              LEFT JOIN markets r ON r.market_id = p.market_id
             GROUP BY 1"""
        join = "LEFT JOIN markets r ON r.market_id = f.market_id"
    else:
        tests = f"""
            SELECT {GROUP_COLUMNS[q.group]} AS grp, {sums} FROM {relation}
             WHERE bucket >= %(since)s AND bucket < %(until)s {scope} GROUP BY 1"""
        join = ""
    query = f"""
        WITH tests AS ({tests}
        ), closure AS (
            SELECT coalesce({_group_key(q.group, "f")}, '') AS grp,
                   count(*) AS failures, count(closed_at) AS closed,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - raised_at))
                       FILTER (WHERE closed_at IS NOT NULL) AS median_close_s
              FROM failures f {join}
             WHERE kind = ANY(%(kinds)s) AND raised_at >= %(since)s AND raised_at < %(until)s {f_scope}
             GROUP BY 1
        )
        SELECT coalesce(t.grp, c.grp) AS grp, coalesce(t.tests, 0) AS tests, coalesce(t.negative, 0) AS negative,
               coalesce(t.invalid, 0) AS invalid, coalesce(t.positive, 0) AS positive,
               coalesce(t.suspicious, 0) AS suspicious, coalesce(c.failures, 0) AS failures,
               coalesce(c.closed, 0) AS closed, c.median_close_s
          FROM tests t FULL JOIN closure c ON c.grp = t.grp
         ORDER BY 1
    """
    with conn.cursor() as cur:
        cur.execute("SET LOCAL work_mem = '32MB'")
        cur.execute(query, params)
        return [shape_totals(r) for r in dict_rows(cur)]


def shape_totals(row: dict[str, Any]) -> dict[str, Any]:
    valid = int(row["tests"]) - int(row["invalid"])
    median = row["median_close_s"]
    return {
        **row,
        "valid": valid,
        "pass_rate": row["negative"] / valid if valid else None,
        "closure_rate": row["closed"] / row["failures"] if row["failures"] else None,
        "median_close_s": float(median) if median is not None else None,
    }


def daily_trend(conn: Connection, since: datetime, until: datetime, markets: list[str] | None,
                tz: str = "Asia/Shanghai") -> list[dict[str, Any]]:
    """Tests, negatives and invalid strips per local day, for the trend chart."""
    params: dict[str, Any] = {"since": since, "until": until, "tz": tz}
    scope = _scope(markets, params)
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT (date_trunc('day', bucket, %(tz)s) AT TIME ZONE %(tz)s)::date AS day,
                       sum(n_tests)::bigint AS tests, sum(n_negative)::bigint AS negative,
                       sum(n_invalid)::bigint AS invalid, sum(n_positive)::bigint AS positive
                  FROM pass_rate_market_hourly
                 WHERE bucket >= %(since)s AND bucket < %(until)s {scope}
                 GROUP BY 1 ORDER BY 1""",
            params,
        )
        return dict_rows(cur)


def group_names(conn: Connection, group: str, keys: list[str]) -> dict[str, str]:
    """Display names of group keys: a region's or a market's Chinese name from the registry."""
    wanted = sorted({k for k in keys if k})
    if not wanted or group not in ("town", "village", "market"):
        return {}
    query = ("SELECT market_id, name_zh FROM markets WHERE market_id = ANY(%s)" if group == "market"
             else "SELECT code, name_zh FROM regions WHERE code = ANY(%s)")
    with conn.cursor() as cur:
        cur.execute(query, (wanted,))
        return {str(k): str(v) for k, v in cur.fetchall()}


def recent_certificates(conn: Connection, markets: list[str] | None, limit: int = 30) -> list[dict[str, Any]]:
    """The newest retail certificates (at a stall) inside the scope, for links to their public pages."""
    params: dict[str, Any] = {"limit": limit}
    scope = _scope(markets, params)
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT certificate_no, product_name, market_id, stall_id, issued_at FROM certificates
                 WHERE stall_id IS NOT NULL {scope} ORDER BY issued_at DESC, certificate_no LIMIT %(limit)s""",
            params,
        )
        return dict_rows(cur)
