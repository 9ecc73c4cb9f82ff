"""Reads of ``device_activity`` (kept by the flagger): each reader's last seen, tests, invalid and false-positive
rates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.failures import quality_figures
from storage.db import Connection
from storage.failures import outcome_counts
from storage.where import Where

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
    where = Where().markets(f.markets).equal({"market_id": f.market_id, "station_id": f.station_id})
    where.after("device_id", after)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(COLUMNS)} FROM device_activity {where.sql()} ORDER BY device_id LIMIT %s",
            [*where.params, limit],
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
