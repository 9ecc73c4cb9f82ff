"""Judging rules of DOMAIN.md §1, table-driven, boundaries included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.analytes import catalogue, get
from domain.judging import (
    CalibrationInput,
    Mode,
    RegistryEntry,
    Scope,
    Signal,
    ThresholdError,
    Thresholds,
    cutoff_disagrees,
    judge,
    polynomial,
    resolve,
    thresholds_from,
)
from schemas.reading import Method, Verdict

CG = Method.COLLOIDAL_GOLD
EI = Method.ENZYME_INHIBITION
DEFAULT = Thresholds()  # c_min 100, r_pos 0.80, r_neg 0.95

RATIO_CASES = [
    # (c, t, expected, why)
    (1000.0, 800.0, Verdict.POSITIVE, "exactly r_pos is positive"),
    (1000.0, 800.5, Verdict.SUSPICIOUS, "just above r_pos"),
    (1000.0, 950.0, Verdict.NEGATIVE, "exactly r_neg is negative"),
    (1000.0, 949.9, Verdict.SUSPICIOUS, "just below r_neg"),
    (1000.0, 1500.0, Verdict.NEGATIVE, "T stronger than C"),
    (1000.0, 0.0, Verdict.POSITIVE, "T = 0 (absent test line)"),
    (100.0, 500.0, Verdict.INVALID, "exactly c_min is invalid"),
    (100.0001, 500.0, Verdict.NEGATIVE, "just above c_min"),
    (0.0, 0.0, Verdict.INVALID, "C = 0 and T = 0"),
    (0.0, 900.0, Verdict.INVALID, "C = 0, T strong: invalid whatever T shows"),
    (1532.0, 402.0, Verdict.POSITIVE, "SPEC example payload"),
]


@pytest.mark.parametrize(("c", "t", "expected", "why"), RATIO_CASES, ids=[c[3] for c in RATIO_CASES])
def test_ratio_mode(c: float, t: float, expected: Verdict, why: str) -> None:
    assert judge(Signal(CG, c, t), DEFAULT).verdict is expected, why


T_ONLY = Thresholds(mode=Mode.T_ONLY, t_pos=300.0, t_neg=500.0)
T_ONLY_CASES = [
    (1000.0, 300.0, Verdict.POSITIVE),
    (1000.0, 0.0, Verdict.POSITIVE),
    (1000.0, 400.0, Verdict.SUSPICIOUS),
    (1000.0, 500.0, Verdict.NEGATIVE),
    (100.0, 900.0, Verdict.INVALID),
    (0.0, 0.0, Verdict.INVALID),
]


@pytest.mark.parametrize(("c", "t", "expected"), T_ONLY_CASES)
def test_t_only_mode(c: float, t: float, expected: Verdict) -> None:
    assert judge(Signal(CG, c, t), T_ONLY).verdict is expected


SEMI = Thresholds(mode=Mode.SEMI_QUANTITATIVE, calibration=(2.0, -2.0), limit=0.5, suspicious_from=0.3)
SEMI_T = Thresholds(
    mode=Mode.SEMI_QUANTITATIVE, calibration=(10.0, -0.01), calibration_input=CalibrationInput.T, limit=5.0
)
SEMI_CASES = [
    (SEMI, 1000.0, 750.0, Verdict.POSITIVE, 0.5),  # 2 - 2*0.75 = 0.5: exactly the limit
    (SEMI, 1000.0, 800.0, Verdict.SUSPICIOUS, 0.4),
    (SEMI, 1000.0, 900.0, Verdict.NEGATIVE, 0.2),
    (SEMI, 1000.0, 0.0, Verdict.POSITIVE, 2.0),
    (SEMI, 50.0, 0.0, Verdict.INVALID, None),
    (SEMI_T, 1000.0, 500.0, Verdict.POSITIVE, 5.0),
    (SEMI_T, 1000.0, 600.0, Verdict.NEGATIVE, 4.0),
]


@pytest.mark.parametrize(("th", "c", "t", "expected", "conc"), SEMI_CASES)
def test_semi_quantitative(th: Thresholds, c: float, t: float, expected: Verdict, conc: float | None) -> None:
    result = judge(Signal(CG, c, t), th)
    assert result.verdict is expected
    if conc is not None:
        assert result.concentration == pytest.approx(conc)


INHIBITION_CASES = [
    (DEFAULT, 50.0, Verdict.POSITIVE),
    (DEFAULT, 49.99, Verdict.NEGATIVE),
    (DEFAULT, 0.0, Verdict.NEGATIVE),
    (DEFAULT, 100.0, Verdict.POSITIVE),
    (Thresholds(inhibition_suspicious_pct=40.0), 45.0, Verdict.SUSPICIOUS),
    (Thresholds(inhibition_suspicious_pct=40.0), 39.0, Verdict.NEGATIVE),
    (Thresholds(inhibition_fail_pct=60.0), 55.0, Verdict.NEGATIVE),
]


@pytest.mark.parametrize(("th", "pct", "expected"), INHIBITION_CASES)
def test_enzyme_inhibition(th: Thresholds, pct: float, expected: Verdict) -> None:
    assert judge(Signal(EI, inhibition_pct=pct), th).verdict is expected


def test_inhibition_ignores_ratio_mode_and_lines() -> None:
    assert judge(Signal(EI, c_line=0.0, t_line=0.0, inhibition_pct=10.0), DEFAULT).verdict is Verdict.NEGATIVE


def test_missing_signal_is_invalid_not_a_crash() -> None:
    assert judge(Signal(CG, None, 10.0), DEFAULT).verdict is Verdict.INVALID
    assert judge(Signal(EI), DEFAULT).verdict is Verdict.INVALID


def test_ratio_carried_in_judgement() -> None:
    assert judge(Signal(CG, 1000.0, 900.0), DEFAULT).ratio == pytest.approx(0.9)


@pytest.mark.parametrize(
    "bad",
    [
        {"r_pos": 0.96},
        {"c_min": -1},
        {"t_pos": 700.0},
        {"mode": "semi_quantitative"},
        {"inhibition_fail_pct": 0},
        {"r_pos": float("nan")},
        {"mode": "nonsense"},
        {"colour": "red"},
    ],
)
def test_contradictory_thresholds_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ThresholdError):
        thresholds_from(bad)


def test_polynomial() -> None:
    assert polynomial((1.0, 2.0, 3.0), 2.0) == 17.0
    assert polynomial((), 5.0) == 0.0


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _entry(
    i: int, scope: Scope, days: int, params: dict[str, object], analyte: str | None = None, lot: str | None = None
) -> RegistryEntry:
    return RegistryEntry(i, scope, analyte, lot, T0 + timedelta(days=days), params)


REGISTRY = [
    _entry(1, Scope.PROJECT, 0, {"c_min": 100.0, "r_pos": 0.8, "r_neg": 0.95}),
    _entry(2, Scope.ANALYTE, 0, {"r_pos": 0.7}, "chlorpyrifos"),
    _entry(3, Scope.STRIP_LOT, 10, {"c_min": 150.0}, "chlorpyrifos", "CG-1"),
    _entry(4, Scope.STRIP_LOT, 20, {"c_min": 200.0, "r_neg": 0.9}, "chlorpyrifos", "CG-1"),
    _entry(5, Scope.STRIP_LOT, 0, {"c_min": 999.0}, "carbofuran", "CG-1"),
    _entry(6, Scope.PROJECT, 30, {"r_neg": 0.97}),
]


@pytest.mark.parametrize(
    ("analyte", "lot", "day", "c_min", "r_pos", "r_neg", "ids"),
    [
        ("chlorpyrifos", "CG-1", 5, 100.0, 0.7, 0.95, (1, 2)),  # strip-lot entry not yet in force
        ("chlorpyrifos", "CG-1", 10, 150.0, 0.7, 0.95, (1, 2, 3)),  # exactly valid_from: in force
        ("chlorpyrifos", "CG-1", 25, 200.0, 0.7, 0.9, (1, 2, 4)),  # newer version wins
        ("chlorpyrifos", "CG-9", 25, 100.0, 0.7, 0.95, (1, 2)),  # unknown lot: analyte layer
        ("phorate", "CG-1", 25, 100.0, 0.8, 0.95, (1,)),  # lot belongs to other analytes
        ("phorate", "X", 31, 100.0, 0.8, 0.97, (6,)),
    ],
)
def test_resolve_layers_by_time(
    analyte: str, lot: str, day: int, c_min: float, r_pos: float, r_neg: float, ids: tuple[int, ...]
) -> None:
    resolved = resolve(REGISTRY, analyte, lot, T0 + timedelta(days=day))
    assert (resolved.thresholds.c_min, resolved.thresholds.r_pos, resolved.thresholds.r_neg) == (c_min, r_pos, r_neg)
    assert resolved.entry_ids == ids
    assert resolved.to_dict()["entry_ids"] == list(ids)


def test_resolve_with_empty_registry_uses_project_defaults() -> None:
    resolved = resolve([], "x", "y", T0)
    assert resolved.thresholds == Thresholds() and resolved.entry_ids == ()


def test_before_any_entry_uses_builtin_defaults() -> None:
    assert resolve(REGISTRY, "chlorpyrifos", "CG-1", T0 - timedelta(seconds=1)).entry_ids == ()


@pytest.mark.parametrize(
    ("cutoff", "th", "expected"),
    [
        (0.80, DEFAULT, False),
        (0.804, DEFAULT, False),
        (0.81, DEFAULT, True),
        (None, DEFAULT, False),
        (0.5, T_ONLY, False),
    ],
)
def test_cutoff_disagreement(cutoff: float | None, th: Thresholds, expected: bool) -> None:
    assert cutoff_disagrees(cutoff, th) is expected


def test_thresholds_round_trip() -> None:
    assert thresholds_from(SEMI.to_dict()) == SEMI


def test_analyte_catalogue_has_domain_table() -> None:
    codes = set(catalogue())
    assert {"chlorpyrifos", "clenbuterol", "malachite_green", "nitrofuran_aoz"} <= codes
    entry = get("procymidone")
    assert entry is not None and entry.name_zh == "腐霉利" and "韭菜" in entry.commodities
    assert get("no-such") is None


def test_indexed_registry_equals_plain_resolution() -> None:
    from domain.judging import Registry

    registry = Registry(REGISTRY)
    for analyte, lot in [("chlorpyrifos", "CG-1"), ("chlorpyrifos", "CG-9"), ("carbofuran", "CG-1"), ("x", "y")]:
        for day in range(-1, 35):
            at = T0 + timedelta(days=day)
            assert registry.resolve(analyte, lot, at) == resolve(REGISTRY, analyte, lot, at)
