"""SQL for devices as the flagger saw them and for strip lots: tests, invalid and false-positive rates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.failures import quality_figures
from storage.db import Connection
from storage.failures import outcome_counts

COLUMNS = (
    "device_id",
    "market_id",
    "station_id",
    "first_seen",
    "last_measured_at",
    "last_received_at",
    "tests",
    "negative",
    "positive",
    "suspicious",
    "invalid",
    "verdict_mismatch",
)


@dataclass(frozen=True)
class DeviceFilter:
    markets: list[str] | None = None
    market_id: str | None = None
    station_id: str | None = None


def list_devices(conn: Connection, f: DeviceFilter, limit: int, after: str | None) -> list[dict[str, Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if f.markets is not None:
        clauses.append("market_id = ANY(%s)")
        params.append(f.markets)
    for column in ("market_id", "station_id"):
        value = getattr(f, column)
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if after is not None:
        clauses.append("device_id > %s")
        params.append(after)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(COLUMNS)} FROM device_activity {where} ORDER BY device_id LIMIT %s", [*params, limit]
        )
        rows = [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]
    outcomes = outcome_counts(conn, "device", [(r["device_id"],) for r in rows])
    for row in rows:
        row["last_seen"] = row["last_received_at"]
        got = outcomes.get((row["device_id"],), {})
        row["false_positives"] = got.get("false_positives", 0)
        row["confirmed_positives"] = got.get("confirmed", 0)
        row.update(quality_figures(row["tests"], row["invalid"], row["false_positives"], row["confirmed_positives"]))
    return rows


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
    clauses = ["bucket >= %s", "bucket < %s"]
    params: list[Any] = [f.since, f.until]
    for column, value in (("market_id", f.market_id), ("analyte", f.analyte)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if f.markets is not None:
        clauses.append("market_id = ANY(%s)")
        params.append(f.markets)
    if after is not None:
        clauses.append("(analyte, strip_lot) > (%s, %s)")
        params.extend(after)
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in LOT_COUNTS)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT analyte, strip_lot, {sums} FROM pass_rate_strip_lot_hourly WHERE {' AND '.join(clauses)} "
            "GROUP BY analyte, strip_lot ORDER BY analyte, strip_lot LIMIT %s",
            [*params, limit],
        )
        names = [d[0] for d in cur.description or ()]
        found = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
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
