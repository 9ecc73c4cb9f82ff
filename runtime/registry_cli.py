"""``rapidtrace market ...``, ``rapidtrace station ...`` and ``rapidtrace region ...``: the registry from a shell.

    rapidtrace market set WJ-M07 --name-zh 湖塘农贸市场 --kind farmers --region 320412101000 [--grid G1]
                          [--name-en ...] [--address ...] [--time-zone Asia/Shanghai]
    rapidtrace market list [--kind farmers] | market show WJ-M07 | market remove WJ-M07
    rapidtrace market unregistered          (markets readers report that the registry does not know)
    rapidtrace market seed-district         (the simulated district of simulators/district.py; idempotent)
    rapidtrace station set --market WJ-M07 --station WJ-M07-S1 --name 快检室 --hours mon-sat=06:00-18:00
    rapidtrace station list --market WJ-M07 | station remove --market WJ-M07 --station WJ-M07-S1
    rapidtrace region set 320412101000 湖塘镇 | region list [--prefix 320412]

Every command prints JSON lines; changes are audited with the actor ``cli:<os user>``.
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any

from domain.registry_rules import (
    DEFAULT_TIME_ZONE,
    WEEKDAYS,
    MarketKind,
    WorkingHours,
    check_time_zone,
    market_region,
    region_parts,
)
from runtime.cli_commands import actor, command, database, fail, print_json
from schemas.common import ID_RE
from schemas.settings import Settings
from storage import registry
from storage.audit import record_audit
from storage.db import Connection


def add_subcommands(sub: Any) -> None:
    """Add ``market``, ``station`` and ``region`` to the ``rapidtrace`` argparse subparsers."""
    _market_commands(sub.add_parser("market", help="the registry of markets"))
    _station_commands(sub.add_parser("station", help="the stations of registered markets"))
    _region_commands(sub.add_parser("region", help="names of the county, towns and villages"))


def _market_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="market_command", required=True)
    p = command(sub, "set", cmd_market_set, "register a market or replace its entry")
    p.add_argument("market_id")
    p.add_argument("--name-zh", required=True)
    p.add_argument("--name-en")
    p.add_argument("--kind", required=True, choices=[k.value for k in MarketKind])
    p.add_argument("--region", required=True, help="12-digit code of its town or village")
    p.add_argument("--grid", help="grid id (网格)")
    p.add_argument("--address")
    p.add_argument("--time-zone", default=DEFAULT_TIME_ZONE)
    p = command(sub, "list", cmd_market_list, "list registered markets")
    p.add_argument("--kind", choices=[k.value for k in MarketKind])
    p = command(sub, "show", cmd_market_show, "one market with its stations")
    p.add_argument("market_id")
    p = command(sub, "remove", cmd_market_remove, "remove a market and its stations (readings stay)")
    p.add_argument("market_id")
    command(sub, "unregistered", cmd_market_unregistered, "markets readers report that are not registered")
    command(sub, "seed-district", cmd_seed_district, "register the simulated district (idempotent)")


def _station_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="station_command", required=True)
    p = command(sub, "set", cmd_station_set, "add a station to a market or replace it")
    p.add_argument("--market", required=True)
    p.add_argument("--station", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--hours", action="append", default=[], metavar="DAYS=HH:MM-HH:MM",
                   help="e.g. mon-fri=06:00-18:00 or sun=closed (repeat; days left out are closed)")
    p = command(sub, "list", cmd_station_list, "the stations of a market")
    p.add_argument("--market", required=True)
    p = command(sub, "remove", cmd_station_remove, "remove a station")
    p.add_argument("--market", required=True)
    p.add_argument("--station", required=True)


def _region_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="region_command", required=True)
    p = command(sub, "set", cmd_region_set, "name a county, town or village by its 12-digit code")
    p.add_argument("code")
    p.add_argument("name_zh")
    p.add_argument("--name-en")
    p = command(sub, "list", cmd_region_list, "region names by code")
    p.add_argument("--prefix", default="")


# --- helpers ---------------------------------------------------------------------------------


def _db(settings: Settings) -> AbstractContextManager[Connection]:
    return database(settings.database_url, "rapidtrace-registry")


def _market_dict(m: registry.Market) -> dict[str, Any]:
    return {**asdict(m), "kind": m.kind.value}


def parse_hours(items: list[str]) -> dict[str, str | None]:
    """``["mon-fri=06:00-18:00", "sat=07:00-12:00", "sun=closed"]`` → the weekday mapping; ValueError if bad."""
    hours: dict[str, str | None] = dict.fromkeys(WEEKDAYS)
    for item in items:
        days, sep, span = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r} is not DAYS=HH:MM-HH:MM")
        first, _, last = days.strip().lower().partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(f"{days!r}: days are {', '.join(WEEKDAYS)} or a range like mon-fri")
        lo, hi = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if hi < lo:
            raise ValueError(f"{days!r}: a range runs forward (mon-fri)")
        value = None if span.strip().lower() == "closed" else span.strip()
        for day in WEEKDAYS[lo:hi + 1]:
            hours[day] = value
    WorkingHours.from_mapping(hours)
    return hours


# --- markets ---------------------------------------------------------------------------------


def cmd_market_set(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if not ID_RE.fullmatch(args.market_id):
            raise ValueError("a market id is 1-64 chars of [A-Za-z0-9._-]")
        market_region(args.region)
        check_time_zone(args.time_zone)
    except ValueError as exc:
        return fail(str(exc))
    m = registry.Market(args.market_id, args.name_zh, args.name_en, MarketKind(args.kind), args.region, args.grid,
                        args.address, args.time_zone)
    with _db(settings) as conn:
        saved, created = registry.upsert_market(conn, m, actor())
        record_audit(conn, actor(), "market.put", f"market:{m.market_id}", {**_market_dict(m), "source": "cli"})
    print_json({**_market_dict(saved), "created": created})
    return 0


def cmd_market_list(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        found = registry.list_markets(conn, limit=100_000, kind=MarketKind(args.kind) if args.kind else None)
    for m in found:
        print_json(_market_dict(m))
    return 0


def cmd_market_show(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        m = registry.get_market(conn, args.market_id)
        stations = registry.list_stations(conn, args.market_id) if m else []
    if m is None:
        return fail(f"no registered market {args.market_id}")
    print_json({**_market_dict(m), "stations": [asdict(s) for s in stations]})
    return 0


def cmd_market_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        removed = registry.delete_market(conn, args.market_id)
        if removed:
            record_audit(conn, actor(), "market.delete", f"market:{args.market_id}")
    if not removed:
        return fail(f"no registered market {args.market_id}")
    print_json({"market_id": args.market_id, "removed": True})
    return 0


def cmd_market_unregistered(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        for u in registry.unregistered_markets(conn, limit=100_000):
            print_json(asdict(u))
    return 0


def seed_district(conn: Connection, who: str = "seed") -> dict[str, int]:
    """Register the simulated district's regions, markets and stations (idempotent: upserts)."""
    from simulators.district import DISTRICT

    regions = [registry.Region(DISTRICT.county_code, "county", DISTRICT.county_name)]
    regions += [registry.Region(t.code, "town", t.name_zh, t.name_en) for t in DISTRICT.towns]
    regions += [registry.Region(v.code, "village", v.name_zh) for v in DISTRICT.villages]
    registry.upsert_regions(conn, regions)
    stations = 0
    for sm in DISTRICT.markets:
        registry.upsert_market(conn, registry.Market(sm.market_id, sm.name_zh, sm.name_en, sm.kind, sm.region_code,
                                                     sm.grid_id, sm.address, DEFAULT_TIME_ZONE), who)
        for st in sm.stations:
            registry.upsert_station(conn, registry.Station(sm.market_id, st.station_id, st.name, st.hours), who)
            stations += 1
    return {"regions": len(regions), "markets": len(DISTRICT.markets), "stations": stations}


def seed_district_at(database_url: str) -> str:
    """``rapidtrace up --simulate``: register the district once the schema is migrated; a line to print."""
    with database(database_url, "rapidtrace-registry") as conn:
        counts = seed_district(conn)
    return (f"registry: simulated district 武进区, {counts['markets']} markets, {counts['stations']} stations, "
            f"{counts['regions']} regions")


def cmd_seed_district(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        counts = seed_district(conn, actor())
        record_audit(conn, actor(), "registry.seed_district", "registry", counts)
    print_json(counts)
    return 0


# --- stations --------------------------------------------------------------------------------


def cmd_station_set(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if not ID_RE.fullmatch(args.station):
            raise ValueError("a station id is 1-64 chars of [A-Za-z0-9._-]")
        hours = parse_hours(args.hours)
    except ValueError as exc:
        return fail(str(exc))
    with _db(settings) as conn:
        if registry.get_market(conn, args.market) is None:
            return fail(f"no registered market {args.market}; `rapidtrace market set` it first")
        saved, created = registry.upsert_station(conn, registry.Station(args.market, args.station, args.name, hours),
                                                 actor())
        record_audit(conn, actor(), "station.put", f"station:{args.market}/{args.station}",
                     {"name": args.name, "hours": hours, "source": "cli"})
    print_json({**asdict(saved), "created": created})
    return 0


def cmd_station_list(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        for s in registry.list_stations(conn, args.market):
            print_json(asdict(s))
    return 0


def cmd_station_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        removed = registry.delete_station(conn, args.market, args.station)
        if removed:
            record_audit(conn, actor(), "station.delete", f"station:{args.market}/{args.station}")
    if not removed:
        return fail(f"no station {args.station} in market {args.market}")
    print_json({"market_id": args.market, "station_id": args.station, "removed": True})
    return 0


# --- regions ---------------------------------------------------------------------------------


def cmd_region_set(args: argparse.Namespace, settings: Settings) -> int:
    try:
        level = region_parts(args.code).level
    except ValueError as exc:
        return fail(str(exc))
    region = registry.Region(args.code, level.value, args.name_zh, args.name_en)
    with _db(settings) as conn:
        registry.upsert_regions(conn, [region])
        record_audit(conn, actor(), "regions.put", "regions", {"codes": [args.code], "source": "cli"})
    print_json(asdict(region))
    return 0


def cmd_region_list(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        for r in registry.list_regions(conn, args.prefix, limit=100_000):
            print_json(asdict(r))
    return 0
