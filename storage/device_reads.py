"""Reads of ``device_activity`` (kept by the flagger): each reader's last seen, tests, invalid and false-positive
rates."""

from __future__ import annotations

from dataclasses import dataclass
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
