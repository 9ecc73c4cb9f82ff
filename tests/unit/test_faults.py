"""Fault scenarios draw signals as the fleet does (simulators.strips) and plug into the fleet."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from domain.judging import Signal, Thresholds, judge
from schemas.reading import Method, Verdict
from simulators import strips
from simulators.faults import LotFault, MismatchFault, SilenceFault, add_fleet_faults, describe, make_lines, set_verdict
from simulators.fleet import Fleet, FleetConfig

START = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("verdict", list(Verdict))
@pytest.mark.parametrize("th", [Thresholds(), Thresholds(c_min=300.0, r_pos=0.5, r_neg=0.7)])
def test_lines_judge_as_intended_and_are_the_fleets_draw(verdict: Verdict, th: Thresholds) -> None:
    rng = random.Random(3)
    for _ in range(500):
        c, t = make_lines(verdict, rng, th)
        assert judge(Signal(Method.COLLOIDAL_GOLD, c, t), th).verdict is verdict
    assert make_lines(verdict, random.Random(9), th) == tuple(strips.lines(random.Random(9), verdict, th).values())


def test_set_verdict_on_an_enzyme_reading_is_positive_or_negative() -> None:
    rng = random.Random(4)
    base = {"assay": {"method": "enzyme_inhibition"}, "signal": {"inhibition_pct": 1.0}}
    for verdict in Verdict:
        out = set_verdict(base, verdict, rng)
        judged = judge(Signal(Method.ENZYME_INHIBITION, inhibition_pct=out["signal"]["inhibition_pct"]),
                       Thresholds()).verdict
        expected = verdict if verdict in (Verdict.POSITIVE, Verdict.NEGATIVE) else Verdict.NEGATIVE
        assert judged is expected and out["device_result"] == expected.value


def test_add_fleet_faults_breaks_the_busiest_lot_silences_one_reader_and_mismatches_another() -> None:
    fleet = Fleet(FleetConfig(seed=5, markets=1, stations_per_market=1, readers_per_station=3))
    faults = add_fleet_faults(fleet, START, silent_after=timedelta(seconds=60), bad_lot_after=0, seed=5)
    assert [type(f) for f in faults] == [LotFault, SilenceFault, MismatchFault]
    lines = describe(faults)
    bad_lot = fleet.gold_lots_by_use()[-1]
    silent, mismatching = fleet.devices[0].device_id, fleet.devices[1].device_id
    assert bad_lot in lines[0] and silent in lines[1] and mismatching in lines[2]
    out = [p for _, p in fleet.readings(3000, START, timedelta(seconds=0.1))]
    assert len(out) < 3000  # the silent reader's readings after a minute are suppressed
    assert not [p for p in out if p["device_id"] == silent
                and datetime.fromisoformat(p["measured_at"]) >= START + timedelta(seconds=60)]
    on_bad = [p for p in out if p["assay"]["strip_lot"] == bad_lot]
    assert len(on_bad) > 50 and sum(p["device_result"] == "invalid" for p in on_bad) / len(on_bad) > 0.15
    assert {p["assay"].get("cutoff_ratio") for p in out if p["device_id"] == mismatching
            and p["assay"]["method"] == "colloidal_gold"} == {0.60}
