"""SQL for the registry: markets, their stations, and administrative regions (migration 0008).

Every function takes an open connection and works inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import Json, execute_values

from domain.registry_rules import MarketKind, MarketRules, WorkingHours
from storage.db import Connection
from storage.where import Where

MARKET_COLUMNS = ("market_id", "name_zh", "name_en", "market_kind", "region_code", "grid_id", "address",
                  "time_zone", "created_at", "updated_at", "updated_by")
STATION_COLUMNS = ("market_id", "station_id", "name", "hours", "created_at", "updated_at", "updated_by")


@dataclass(frozen=True)
class Market:
    market_id: str
    name_zh: str
    name_en: str | None
    kind: MarketKind
    region_code: str
    grid_id: str | None
    address: str | None
    time_zone: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def rules(self) -> MarketRules:
        return MarketRules(self.kind, self.time_zone)


@dataclass(frozen=True)
class Station:
    market_id: str
    station_id: str
    name: str
    hours: dict[str, str | None]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True)
class Region:
    code: str
    level: str
    name_zh: str
    name_en: str | None = None


@dataclass(frozen=True)
class UnregisteredMarket:
    market_id: str
    devices: int
    tests: int
    first_seen: datetime
    last_seen: datetime


def _market(row: Sequence[Any]) -> Market:
    values = dict(zip(MARKET_COLUMNS, row, strict=True))
    kind = MarketKind(values.pop("market_kind"))
    return Market(kind=kind, **values)


def _station(row: Sequence[Any]) -> Station:
    return Station(*row)


# --- markets ---------------------------------------------------------------------------------


def upsert_market(conn: Connection, m: Market, actor: str) -> tuple[Market, bool]:
    """Create or replace a market; returns it and whether it was new."""
    with conn.cursor() as cur:
        cur.execute(
            f"""INSERT INTO markets (market_id, name_zh, name_en, market_kind, region_code, grid_id, address,
                                     time_zone, updated_by)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (market_id) DO UPDATE SET
                    name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, market_kind = EXCLUDED.market_kind,
                    region_code = EXCLUDED.region_code, grid_id = EXCLUDED.grid_id, address = EXCLUDED.address,
                    time_zone = EXCLUDED.time_zone, updated_at = now(), updated_by = EXCLUDED.updated_by
                RETURNING {', '.join(MARKET_COLUMNS)}, (xmax = 0)""",
            (m.market_id, m.name_zh, m.name_en, m.kind.value, m.region_code, m.grid_id, m.address, m.time_zone,
             actor),
        )
        row = cur.fetchone()
    assert row is not None
    return _market(row[:-1]), bool(row[-1])


def get_market(conn: Connection, market_id: str) -> Market | None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(MARKET_COLUMNS)} FROM markets WHERE market_id = %s", (market_id,))
        row = cur.fetchone()
    return _market(row) if row else None


def list_markets(conn: Connection, *, limit: int, after: str | None = None, kind: MarketKind | None = None,
                 region_prefix: str | None = None, markets: Sequence[str] | None = None) -> list[Market]:
    """Markets by id; ``region_prefix`` matches the start of the region code (a county or town)."""
    where = Where().after("market_id", after).equal({"market_kind": kind.value if kind is not None else None})
    if region_prefix:
        where.add("starts_with(region_code, %s)", region_prefix)
    where.markets(list(markets) if markets is not None else None)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(MARKET_COLUMNS)} FROM markets {where.sql()} ORDER BY market_id LIMIT %s",
            (*where.params, limit),
        )
        return [_market(r) for r in cur.fetchall()]


def delete_market(conn: Connection, market_id: str) -> bool:
    """Remove a market and its stations (readings keep their market id and become unregistered)."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM markets WHERE market_id = %s", (market_id,))
        return cur.rowcount > 0


def market_rules(conn: Connection, market_id: str | None) -> MarketRules | None:
    """The deadline inputs of a registered market, None for an unknown one."""
    if market_id is None:
        return None
    with conn.cursor() as cur:
        cur.execute("SELECT market_kind, time_zone FROM markets WHERE market_id = %s", (market_id,))
        row = cur.fetchone()
    return MarketRules(MarketKind(row[0]), row[1]) if row else None


def unregistered_markets(conn: Connection, *, limit: int, after: str | None = None) -> list[UnregisteredMarket]:
    """Markets readers report that the registry does not know (from what the flagger has seen)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT a.market_id, count(*), sum(a.tests), min(a.first_seen), max(a.last_measured_at)
               FROM device_activity a
               WHERE NOT EXISTS (SELECT 1 FROM markets m WHERE m.market_id = a.market_id)
                 AND (%(after)s::text IS NULL OR a.market_id > %(after)s::text)
               GROUP BY a.market_id ORDER BY a.market_id LIMIT %(limit)s""",
            {"after": after, "limit": limit},
        )
        return [UnregisteredMarket(r[0], int(r[1]), int(r[2]), r[3], r[4]) for r in cur.fetchall()]


# --- stations --------------------------------------------------------------------------------


def upsert_station(conn: Connection, s: Station, actor: str) -> tuple[Station, bool]:
    """Create or replace a station of a registered market; returns it and whether it was new."""
    with conn.cursor() as cur:
        cur.execute(
            f"""INSERT INTO stations (market_id, station_id, name, hours, updated_by) VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (market_id, station_id) DO UPDATE SET
                    name = EXCLUDED.name, hours = EXCLUDED.hours, updated_at = now(), updated_by = EXCLUDED.updated_by
                RETURNING {', '.join(STATION_COLUMNS)}, (xmax = 0)""",
            (s.market_id, s.station_id, s.name, Json(s.hours), actor),
        )
        row = cur.fetchone()
    assert row is not None
    return _station(row[:-1]), bool(row[-1])


def list_stations(conn: Connection, market_id: str) -> list[Station]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(STATION_COLUMNS)} FROM stations WHERE market_id = %s ORDER BY station_id",
                    (market_id,))
        return [_station(r) for r in cur.fetchall()]


def delete_station(conn: Connection, market_id: str, station_id: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM stations WHERE market_id = %s AND station_id = %s", (market_id, station_id))
        return cur.rowcount > 0


def station_hours(conn: Connection) -> dict[tuple[str, str], WorkingHours]:
    """Every registered station's working hours in its market's time zone, by (market_id, station_id)."""
    with conn.cursor() as cur:
        cur.execute("SELECT s.market_id, s.station_id, s.hours, m.time_zone FROM stations s "
                    "JOIN markets m USING (market_id)")
        rows = cur.fetchall()
    out = {}
    for market_id, station_id, hours, tz in rows:
        out[(market_id, station_id)] = WorkingHours.from_mapping(hours, tz)
    return out


# --- regions ---------------------------------------------------------------------------------


def upsert_regions(conn: Connection, regions: Iterable[Region]) -> int:
    # one row a code (the last given wins): ON CONFLICT cannot touch a row twice in one statement
    rows = list({r.code: (r.code, r.level, r.name_zh, r.name_en) for r in regions}.values())
    if not rows:
        return 0
    with conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO regions (code, level, name_zh, name_en) VALUES %s ON CONFLICT (code) DO UPDATE SET "
            "level = EXCLUDED.level, name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, updated_at = now()",
            rows,
            page_size=len(rows),
        )
    return len(rows)


def region_names(conn: Connection, codes: Iterable[str]) -> dict[str, str]:
    """Chinese names of the regions among ``codes`` that the table knows."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    with conn.cursor() as cur:
        cur.execute("SELECT code, name_zh FROM regions WHERE code = ANY(%s)", (wanted,))
        return dict(cur.fetchall())


def list_regions(conn: Connection, prefix: str = "", limit: int = 1000) -> list[Region]:
    with conn.cursor() as cur:
        cur.execute("SELECT code, level, name_zh, name_en FROM regions WHERE starts_with(code, %s) "
                    "ORDER BY code LIMIT %s", (prefix, limit))
        return [Region(*r) for r in cur.fetchall()]

