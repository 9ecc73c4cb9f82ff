"""The simulated fleet: valid, seeded readings at the configured rates, judged as intended."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.judging import Signal, Thresholds, judge
from schemas.common import ID_RE
from schemas.reading import Method, Reading, Verdict
from simulators.fleet import ANALYTES, ENZYME_ANALYTE, CertificateRef, Fleet, FleetConfig, market_ids

START = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
N = 100_000
OP_CODES = {a.code for a in ANALYTES if a.enzyme_screen}
GROUP = {a.code: a.group for a in ANALYTES} | {ENZYME_ANALYTE: "pesticide"}


def within(observed: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    """A binomial count within ``sigmas`` standard deviations of n*p."""
    return abs(observed - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def judged(fleet_items: list[tuple[str, dict[str, Any]]], th: Thresholds) -> list[tuple[Reading, Verdict]]:
    out = []
    for _, payload in fleet_items:
        reading = Reading.model_validate(payload)
        signal = Signal(reading.assay.method, reading.signal.c_line, reading.signal.t_line,
                        reading.signal.inhibition_pct)
        out.append((reading, judge(signal, th).verdict))
    return out


def verdicts(fleet_items: list[tuple[str, dict[str, Any]]], th: Thresholds) -> list[tuple[str, Verdict]]:
    """(device_result, server verdict) straight from the payloads (validation is tested on a sample)."""
    out = []
    for _, p in fleet_items:
        s = p["signal"]
        signal = Signal(Method(p["assay"]["method"]), s.get("c_line"), s.get("t_line"), s.get("inhibition_pct"))
        out.append((p["device_result"], judge(signal, th).verdict))
    return out


@pytest.fixture(scope="module")
def items() -> list[tuple[str, dict[str, Any]]]:
    return list(Fleet(FleetConfig(seed=7)).readings(N, START, timedelta(seconds=2)))


@pytest.fixture(scope="module")
def readings(items: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Verdict]]:
    return verdicts(items, Thresholds())


def test_readings_validate_and_match_their_topic(items: list[tuple[str, dict[str, Any]]]) -> None:
    assert len(items) == N
    for topic, payload in items[::5]:
        reading = Reading.model_validate(payload)
        levels = topic.split("/")
        assert levels[:3] == ["rt", "v1", "markets"] and levels[4] == "stations" and levels[6] == "devices"
        assert levels[8] == "readings" and len(levels) == 9
        assert all(ID_RE.match(level) for level in (levels[3], levels[5], levels[7]))
        assert (reading.market_id, reading.station_id, reading.device_id) == (levels[3], levels[5], levels[7])
        assert payload["measured_at"].endswith("+08:00")


def test_reading_ids_and_sample_ids_are_unique(items: list[tuple[str, dict[str, Any]]]) -> None:
    assert len({p["reading_id"] for _, p in items}) == N
    assert len({p["sample"]["sample_id"] for _, p in items}) == N


def test_server_verdicts_converge_to_the_configured_rates(readings: list[tuple[str, Verdict]]) -> None:
    counts = Counter(verdict for _, verdict in readings)
    cfg = FleetConfig()
    assert within(counts[Verdict.POSITIVE], N, cfg.positive_rate)
    assert within(counts[Verdict.SUSPICIOUS], N, cfg.suspicious_rate)
    assert within(counts[Verdict.INVALID], N, cfg.invalid_rate)


def test_device_agrees_with_the_server_except_injected_disagreements(
        readings: list[tuple[str, Verdict]]) -> None:
    disagreements = [(d, v) for d, v in readings if d != v.value]
    assert within(len(disagreements), N, FleetConfig().disagreement_rate)
    assert len(disagreements) > 0


def test_analyte_groups_follow_the_87_8_5_split(items: list[tuple[str, dict[str, Any]]]) -> None:
    groups = Counter(GROUP[p["assay"]["analyte"]] for _, p in items)
    for group, share in FleetConfig().group_split:
        assert within(groups[group], N, share)


def test_about_30_percent_of_organophosphate_readings_use_enzyme_inhibition(
        items: list[tuple[str, dict[str, Any]]]) -> None:
    enzyme = [p for _, p in items if p["assay"]["method"] == "enzyme_inhibition"]
    op_total = len(enzyme) + sum(1 for _, p in items if p["assay"]["analyte"] in OP_CODES)
    assert 0.27 < len(enzyme) / op_total < 0.31
    assert all(p["assay"]["analyte"] == ENZYME_ANALYTE and "inhibition_pct" in p["signal"]
               and "c_line" not in p["signal"] for p in enzyme)


def test_commodities_fit_their_analyte(items: list[tuple[str, dict[str, Any]]]) -> None:
    allowed = {a.code: {c[0] for c in a.commodities} for a in ANALYTES}
    for _, p in items[:5000]:
        if p["assay"]["method"] == "colloidal_gold":
            assert p["sample"]["commodity"] in allowed[p["assay"]["analyte"]]
    meat = [p for _, p in items if GROUP[p["assay"]["analyte"]] == "beta_agonist"]
    assert {p["sample"]["commodity_category"] for p in meat} == {"meat"}


def test_same_seed_same_readings_other_seed_other_readings() -> None:
    first = list(Fleet(FleetConfig(seed=3)).readings(50, START))
    assert first == list(Fleet(FleetConfig(seed=3)).readings(50, START))
    assert first != list(Fleet(FleetConfig(seed=4)).readings(50, START))


def test_custom_rates_and_thresholds_are_honoured() -> None:
    th = Thresholds(c_min=300.0, r_pos=0.5, r_neg=0.7)
    cfg = FleetConfig(seed=11, positive_rate=0.2, suspicious_rate=0.1, invalid_rate=0.05,
                      disagreement_rate=0.0, thresholds=th, markets=5)
    n = 10_000
    result = judged(list(Fleet(cfg).readings(n, START)), th)
    counts = Counter(v for _, v in result)
    assert within(counts[Verdict.POSITIVE], n, 0.2)
    assert within(counts[Verdict.SUSPICIOUS], n, 0.1)
    assert within(counts[Verdict.INVALID], n, 0.05)
    assert all(r.device_result is v for r, v in result)
    assert {r.market_id for r, _ in result} == {f"mkt-{m:02d}" for m in range(1, 6)}
    assert all(r.assay.cutoff_ratio == 0.5 for r, _ in result if r.assay.method == "colloidal_gold")


def test_readings_reference_certificates_from_the_pool() -> None:
    pool = [("HGZ-320412-2026-000913", "L20261127-03", "韭菜", "vegetable"),
            ("HGZ-320412-2026-000914", "L20261127-04", "猪肉", "meat"),
            ("HGZ-320412-2026-000915", "L20261127-05", "鳜鱼", "aquatic")]
    by_no = {ref[0]: ref for ref in pool}
    payloads = [p for _, p in Fleet(FleetConfig(seed=5), certificate_pool=pool).readings(3000, START)]
    linked = [p["sample"] for p in payloads if "certificate_no" in p["sample"]]
    assert len(linked) > 1500
    for sample in linked:
        _, lot_code, commodity, category = by_no[sample["certificate_no"]]
        assert (sample["lot_code"], sample["commodity"], sample["commodity_category"]) == (
            lot_code, commodity, category)
    assert {s["certificate_no"] for s in linked} == set(by_no)


class _Silence:
    """Suppress one device; tag the others (records what the hook was given)."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.calls: list[tuple[str, str, str, datetime]] = []

    def apply(self, station_id: str, device_id: str, strip_lot: str, payload: dict[str, Any],
              now: datetime) -> dict[str, Any] | None:
        self.calls.append((station_id, device_id, strip_lot, now))
        if device_id == self.device_id:
            return None
        return {**payload, "firmware": "9.9.9"}


def test_faults_rewrite_or_suppress_readings() -> None:
    fleet = Fleet(FleetConfig(seed=2, markets=1, stations_per_market=1, readers_per_station=2))
    silent = fleet.devices[0].device_id
    fault = _Silence(silent)
    fleet.add_fault(fault)
    out = list(fleet.readings(400, START))
    assert 100 < len(out) < 300
    assert all(p["device_id"] != silent and p["firmware"] == "9.9.9" for _, p in out)
    assert len(fault.calls) == 400
    station, device, lot, now = fault.calls[0]
    assert device in {d.device_id for d in fleet.devices}
    assert station == fleet.devices[0].station_id and lot in {s.lot for s in fleet.strip_lots}
    assert now == START


def test_rates_above_one_are_rejected() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        FleetConfig(positive_rate=0.6, invalid_rate=0.5)


def test_a_market_samples_only_its_own_stall_lots() -> None:
    cfg = FleetConfig(seed=6, markets=3, market_prefix="east")
    assert market_ids(cfg) == ["east-01", "east-02", "east-03"]
    pool = [CertificateRef("C-1", "L-1", "韭菜", "vegetable", "east-01", "east-01-s001"),
            CertificateRef("C-2", "L-2", "猪肉", "meat", "east-02", "east-02-s002"),
            ("C-3", "L-3", "鳜鱼", "aquatic")]  # a plain 4-tuple: any market may sample it
    payloads = [p for _, p in Fleet(cfg, certificate_pool=pool).readings(6000, START)]
    linked = [p for p in payloads if "certificate_no" in p["sample"]]
    by_market = {m: {p["sample"]["certificate_no"] for p in linked if p["market_id"] == m} for m in market_ids(cfg)}
    assert by_market == {"east-01": {"C-1", "C-3"}, "east-02": {"C-2", "C-3"}, "east-03": {"C-3"}}
    for p in linked:
        stall = {"C-1": "east-01-s001", "C-2": "east-02-s002"}.get(p["sample"]["certificate_no"])
        assert stall is None or p["sample"]["vendor_id"] == stall


def test_gold_lots_by_use_ends_with_the_busiest_lot() -> None:
    fleet = Fleet(FleetConfig(seed=8))
    order = fleet.gold_lots_by_use()
    assert set(order) == {lot.lot for lot in fleet.strip_lots if lot.method == "colloidal_gold"}
    analyte = {lot.lot: lot.analyte for lot in fleet.strip_lots}
    used = Counter(p["assay"]["strip_lot"] for _, p in fleet.readings(10_000, START))
    busiest_analyte = Counter({a: sum(n for lot, n in used.items() if analyte[lot] == a) for a in set(analyte.values())
                               if a != ENZYME_ANALYTE}).most_common(1)[0][0]
    assert analyte[order[-1]] == busiest_analyte
    assert used[order[-1]] > 10 * used[order[0]]


def test_a_market_prefix_must_make_identifiers() -> None:
    with pytest.raises(ValueError, match="market prefix"):
        FleetConfig(market_prefix="east market")
