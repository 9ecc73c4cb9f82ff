"""Invalid-rate anomalies against a subject's own baseline; silent readers in working hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.anomaly import (
    AnomalyRules,
    Counts,
    DeviceSeen,
    in_working_hours,
    invalid_rate_anomaly,
    silent_devices,
    working_time_between,
)

RULES = AnomalyRules()


@pytest.mark.parametrize(
    ("window", "baseline", "flagged", "source"),
    [
        (Counts(50, 10), Counts(1000, 10), True, "own"),  # 20% vs 1%
        (Counts(50, 1), Counts(1000, 10), False, None),  # 2%: usual
        (Counts(49, 49), Counts(1000, 10), False, None),  # too few tests in the window
        (Counts(50, 10), Counts(1000, 100), False, None),  # 20% vs its own usual 10%: < 3x
        (Counts(50, 10), Counts(10, 5), True, "prior"),  # short history: prior 1%
        (Counts(50, 4), Counts(1000, 0), False, None),  # 8% < min_window_rate 10%
        (Counts(50, 5), Counts(1000, 10), True, "own"),  # exactly 10% and 10x baseline, z ≈ 6.4
        (Counts(20, 2), Counts(1000, 10), False, None),  # 2 of 20 happens by chance (1.7% of windows)
    ],
)
def test_invalid_rate(window: Counts, baseline: Counts, flagged: bool, source: str | None) -> None:
    found = invalid_rate_anomaly(window, baseline, RULES)
    assert (found is not None) is flagged
    if found is not None:
        assert found.baseline_source == source
        assert "invalid rate" in found.describe()


def test_simulated_bad_strip_lot_is_flagged_only_once_it_goes_bad() -> None:
    """A lot with its usual 1% invalid rate turns bad (30%): the detector fires on the bad window only."""
    from simulators.faults import BadStripLot

    bad = BadStripLot("CG-BAD", starts_after=2000, invalid_rate=0.30, seed=7)
    outcomes = [bad.is_invalid(i, usual_rate=0.01) for i in range(2200)]
    baseline = Counts(2000, sum(outcomes[:2000]))
    assert invalid_rate_anomaly(Counts(100, sum(outcomes[1900:2000])), baseline) is None
    assert invalid_rate_anomaly(Counts(100, sum(outcomes[2100:2200])), baseline) is not None


SH = timedelta(hours=8)  # Asia/Shanghai offset


def _at(day: int, hour: float) -> datetime:
    """A UTC instant given as Shanghai local day/hour."""
    return datetime(2026, 11, day, tzinfo=UTC) + timedelta(hours=hour) - SH


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (_at(28, 7), _at(28, 9), timedelta(hours=2)),
        (_at(28, 17), _at(29, 7), timedelta(hours=2)),  # 17-18 and 06-07
        (_at(28, 19), _at(29, 5), timedelta(0)),  # night
        (_at(28, 9), _at(28, 8), timedelta(0)),
        (_at(27, 6), _at(29, 6), timedelta(hours=24)),
    ],
)
def test_working_time(start: datetime, end: datetime, expected: timedelta) -> None:
    assert working_time_between(start, end, RULES) == expected


def test_working_hours_bounds() -> None:
    assert in_working_hours(_at(28, 6), RULES)
    assert not in_working_hours(_at(28, 18), RULES)


def _dev(name: str, last: datetime) -> DeviceSeen:
    return DeviceSeen(name, "m1", "s1", last)


@pytest.mark.parametrize(
    ("last", "now", "silent"),
    [
        (_at(28, 9), _at(28, 10), True),  # exactly silence_after of working time
        (
            _at(
                28,
                9,
            ),
            _at(28, 9.9),
            False,
        ),
        (_at(27, 17.5), _at(28, 6.4), False),  # 30 min yesterday + 24 min today
        (_at(27, 17.5), _at(28, 6.6), True),
        (_at(28, 9), _at(28, 20), False),  # nobody is expected to test at night
        (_at(10, 9), _at(28, 10), False),  # retired long ago
    ],
)
def test_silent_devices(last: datetime, now: datetime, silent: bool) -> None:
    found = silent_devices([_dev("d1", last)], now, RULES)
    assert bool(found) is silent


def test_fleet_faults_plug_into_the_fleet() -> None:
    from simulators.faults import fleet_faults
    from simulators.fleet import Fleet, FleetConfig

    fleet = Fleet(FleetConfig(seed=4, markets=1, stations_per_market=1, readers_per_station=3))
    start = _at(28, 8)
    devices = [d.device_id for d in fleet.devices]
    lots = [lot.lot for lot in fleet.strip_lots if lot.method == "colloidal_gold"]
    for fault in fleet_faults(devices, lots, start):
        fleet.add_fault(fault)
    out = [p for _, p in fleet.readings(6000, start, timedelta(seconds=3))]
    silent_from, silent_to = start + timedelta(minutes=10), start + timedelta(minutes=190)
    quiet = [
        p
        for p in out
        if p["device_id"] == devices[0] and silent_from <= datetime.fromisoformat(p["measured_at"]) < silent_to
    ]
    assert quiet == []
    assert any(p["assay"].get("cutoff_ratio") == 0.60 for p in out if p["device_id"] == devices[1])
    bad = [p for p in out if p["assay"]["strip_lot"] == lots[-1]]
    if len(bad) > 260:
        late = bad[230:]
        invalid = [p for p in late if p["device_result"] == "invalid"]
        assert len(invalid) / len(late) > 0.15
