"""Rules from the registry: posting deadlines by market kind, station working hours, region codes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from domain.registry_rules import (
    MarketKind,
    MarketRules,
    RegionLevel,
    WorkingHours,
    market_region,
    parse_span,
    posting_deadline,
    region_parts,
)

CST = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("kind", "since", "due"),
    [
        # traced at 15:00 local on 28 Nov: posted by 08:00 (wholesale) / 09:00 (others) on 29 Nov, local
        (MarketKind.WHOLESALE, "2026-11-28T07:00:00Z", "2026-11-29T00:00:00Z"),
        (MarketKind.FARMERS, "2026-11-28T07:00:00Z", "2026-11-29T01:00:00Z"),
        (MarketKind.SUPERMARKET, "2026-11-28T07:00:00Z", "2026-11-29T01:00:00Z"),
        (MarketKind.VILLAGE_STATION, "2026-11-28T07:00:00Z", "2026-11-29T01:00:00Z"),
        # 23:30 UTC on the 27th is 07:30 on the 28th in Shanghai: the next local day is the 29th
        (MarketKind.FARMERS, "2026-11-27T23:30:00Z", "2026-11-29T01:00:00Z"),
    ],
)
def test_posting_deadline_by_kind_in_local_time(kind: MarketKind, since: str, due: str) -> None:
    got = posting_deadline(datetime.fromisoformat(since), MarketRules(kind, CST))
    assert got == datetime.fromisoformat(due)


def test_posting_deadline_follows_the_market_time_zone() -> None:
    since = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert posting_deadline(since, MarketRules(MarketKind.FARMERS, "Asia/Urumqi")) == datetime(
        2026, 11, 29, 3, 0, tzinfo=UTC)  # 09:00 at UTC+6


def test_working_hours_per_weekday() -> None:
    # 2026-11-30 is a Monday
    hours = WorkingHours.from_mapping({"mon": "06:00-12:00", "tue": "06:00-24:00"}, CST)
    monday_10 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 local
    monday_13 = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # 13:00 local
    assert hours.is_open(monday_10)
    assert not hours.is_open(monday_13)
    assert not hours.is_open(datetime(2026, 12, 6, 2, 0, tzinfo=UTC))  # Sunday: closed
    # Monday 10:00 -> Tuesday 08:00 local: 2 h on Monday, 2 h on Tuesday
    assert hours.open_time_between(monday_10, monday_10 + timedelta(hours=22)) == timedelta(hours=4)
    # until midnight on Tuesday counts the last hour
    tue_23 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert hours.open_time_between(tue_23, tue_23 + timedelta(hours=2)) == timedelta(hours=1)
    assert hours.to_mapping()["tue"] == "06:00-24:00"
    assert hours.to_mapping()["sun"] is None


@pytest.mark.parametrize("bad", ["6-18", "18:00-06:00", "06:00-24:30", "25:00-26:00", "06:00-06:00"])
def test_bad_spans_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_span(bad)


def test_unknown_weekday_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown weekdays"):
        WorkingHours.from_mapping({"monday": "06:00-18:00"})


def test_daily_hours_match_the_old_constants() -> None:
    hours = WorkingHours.daily(time(6), time(18), CST)
    assert hours.is_open(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))  # 08:00 local
    assert not hours.is_open(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # 20:00 local


def test_region_parts() -> None:
    village = region_parts("320412101203")
    assert (village.county, village.town, village.village, village.level) == (
        "320412000000", "320412101000", "320412101203", RegionLevel.VILLAGE)
    town = market_region("320412101000")
    assert town.level is RegionLevel.TOWN and town.village is None
    assert region_parts("320412000000").level is RegionLevel.COUNTY
    for bad in ("32041210100", "3204121010000", "32041210100x", "320412000001"):
        with pytest.raises(ValueError):
            region_parts(bad)
    with pytest.raises(ValueError, match="county"):
        market_region("320412000000")
