"""The simulated district has the shape of the one the project serves (DOMAIN.md §5)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from domain.registry_rules import MarketKind, WorkingHours, market_region
from schemas.common import ID_RE
from simulators.district import DISTRICT
from simulators.fleet import Fleet, FleetConfig, market_ids


def test_one_county_eight_towns_two_subdistricts() -> None:
    assert DISTRICT.county_code == "320412000000"
    names = [t.name_zh for t in DISTRICT.towns]
    assert len(names) == 10 and len(set(names)) == 10
    assert sum(n.endswith("街道") for n in names) == 2
    assert sum(n.endswith("镇") for n in names) == 8


def test_25_market_stations_and_22_village_stations() -> None:
    kinds = Counter(m.kind for m in DISTRICT.markets)
    assert kinds[MarketKind.VILLAGE_STATION] == 22
    assert sum(n for k, n in kinds.items() if k is not MarketKind.VILLAGE_STATION) == 25
    assert kinds[MarketKind.WHOLESALE] >= 1 and kinds[MarketKind.FARMERS] >= 1
    stations = [s for m in DISTRICT.markets for s in m.stations]
    assert len(stations) == 47
    assert len({s.station_id for s in stations}) == 47  # station ids are the Kafka key: unique
    towns = {t.code for t in DISTRICT.towns}
    villages = {v.code for v in DISTRICT.villages}
    for m in DISTRICT.markets:
        assert ID_RE.fullmatch(m.market_id) and m.name_zh
        parts = market_region(m.region_code)
        assert parts.town in towns
        assert (parts.village in villages) == (m.kind is MarketKind.VILLAGE_STATION)
        for s in m.stations:
            WorkingHours.from_mapping(s.hours)


def test_the_fleet_publishes_from_every_district_station() -> None:
    config = FleetConfig(district=DISTRICT, readers_per_station=2, seed=3)
    fleet = Fleet(config)
    assert market_ids(config) == DISTRICT.market_ids()
    assert len(fleet.devices) == 94
    stations = {(m.market_id, s.station_id) for m in DISTRICT.markets for s in m.stations}
    assert {(d.market_id, d.station_id) for d in fleet.devices} == stations
    topic, payload = next(fleet.readings(1, datetime.now(UTC)))
    assert topic.startswith("rt/v1/markets/WJ-") and payload["market_id"] in DISTRICT.market_ids()
