"""The server's verdict on one strip (DOMAIN.md §1), written once.

Pure: no I/O.  A :class:`Thresholds` value says how to judge; :func:`judge`
applies it to the signal of one reading; :func:`resolve` layers the registry
entries (project default → analyte → strip lot) in force at a given time.
Every threshold is a configuration default (DOMAIN.md marks them uncertain),
overridable per analyte and per strip lot through the registry.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas.errors import InvalidInput
from schemas.reading import Method, Verdict


class Mode(StrEnum):
    """How a colloidal-gold reader turns line intensities into a verdict."""

    RATIO = "ratio"
    T_ONLY = "t_only"
    SEMI_QUANTITATIVE = "semi_quantitative"


class CalibrationInput(StrEnum):
    T = "t"
    RATIO = "ratio"


class Scope(StrEnum):
    """Registry layers, weakest first."""

    PROJECT = "project"
    ANALYTE = "analyte"
    STRIP_LOT = "strip_lot"


class ThresholdError(InvalidInput):
    """A threshold set that cannot judge anything (e.g. r_pos > r_neg)."""


@dataclass(frozen=True)
class Thresholds:
    """Everything the judge needs; defaults are DOMAIN.md's project defaults."""

    mode: Mode = Mode.RATIO
    c_min: float = 100.0
    r_pos: float = 0.80
    r_neg: float = 0.95
    t_pos: float = 400.0
    t_neg: float = 600.0
    calibration: tuple[float, ...] = ()
    calibration_input: CalibrationInput = CalibrationInput.RATIO
    limit: float | None = None
    suspicious_from: float | None = None
    inhibition_fail_pct: float = 50.0
    inhibition_suspicious_pct: float | None = None
    cutoff_tolerance: float = 0.005

    def __post_init__(self) -> None:
        check_thresholds(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mode"] = self.mode.value
        data["calibration_input"] = self.calibration_input.value
        data["calibration"] = list(self.calibration)
        return data


_FIELD_NAMES = frozenset(f.name for f in fields(Thresholds))


def check_thresholds(th: Thresholds) -> None:
    """Raise :class:`ThresholdError` for a set that contradicts itself."""
    numbers = [th.c_min, th.r_pos, th.r_neg, th.t_pos, th.t_neg, th.inhibition_fail_pct, th.cutoff_tolerance]
    numbers += list(th.calibration)
    numbers += [v for v in (th.limit, th.suspicious_from, th.inhibition_suspicious_pct) if v is not None]
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers):
        raise ThresholdError("thresholds must be finite numbers")
    if th.c_min < 0 or th.cutoff_tolerance < 0:
        raise ThresholdError("c_min and cutoff_tolerance must be >= 0")
    if not 0 <= th.r_pos <= th.r_neg:
        raise ThresholdError("need 0 <= r_pos <= r_neg")
    if not 0 <= th.t_pos <= th.t_neg:
        raise ThresholdError("need 0 <= t_pos <= t_neg")
    if not 0 < th.inhibition_fail_pct <= 100:
        raise ThresholdError("inhibition_fail_pct must be in (0, 100]")
    if th.inhibition_suspicious_pct is not None and not 0 <= th.inhibition_suspicious_pct <= th.inhibition_fail_pct:
        raise ThresholdError("inhibition_suspicious_pct must be in [0, inhibition_fail_pct]")
    if th.mode is Mode.SEMI_QUANTITATIVE and (not th.calibration or th.limit is None):
        raise ThresholdError("semi_quantitative mode needs calibration coefficients and a limit")
    if th.suspicious_from is not None and th.limit is not None and th.suspicious_from > th.limit:
        raise ThresholdError("suspicious_from must be <= limit")


def thresholds_from(values: Mapping[str, Any], base: Thresholds | None = None) -> Thresholds:
    """A :class:`Thresholds` from a (partial) mapping layered over ``base``.

    Unknown keys are an error, so a typo in the registry is not silently ignored.
    """
    unknown = set(values) - _FIELD_NAMES
    if unknown:
        raise ThresholdError(f"unknown threshold field(s): {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = dict(values)
    try:
        if "mode" in changes:
            changes["mode"] = Mode(changes["mode"])
        if "calibration_input" in changes:
            changes["calibration_input"] = CalibrationInput(changes["calibration_input"])
        if "calibration" in changes:
            changes["calibration"] = tuple(float(c) for c in changes["calibration"])
    except (TypeError, ValueError) as exc:
        raise ThresholdError(str(exc)) from exc
    return replace(base or Thresholds(), **changes)


@dataclass(frozen=True)
class RegistryEntry:
    """One versioned row of the strip-lot threshold registry."""

    entry_id: int
    scope: Scope
    analyte: str | None
    strip_lot: str | None
    valid_from: datetime
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Resolved:
    """The thresholds in force, and the registry rows they were built from."""

    thresholds: Thresholds
    entry_ids: tuple[int, ...] = ()
    layers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**self.thresholds.to_dict(), "entry_ids": list(self.entry_ids), "layers": list(self.layers)}


def _matches(entry: RegistryEntry, analyte: str, strip_lot: str) -> bool:
    if entry.scope is Scope.PROJECT:
        return True
    if entry.scope is Scope.ANALYTE:
        return entry.analyte == analyte
    return entry.analyte == analyte and entry.strip_lot == strip_lot


def resolve(
    entries: Iterable[RegistryEntry], analyte: str, strip_lot: str, at: datetime, base: Thresholds | None = None
) -> Resolved:
    """Layer the newest entry per scope with ``valid_from <= at`` over ``base``."""
    newest: dict[Scope, RegistryEntry] = {}
    for entry in entries:
        if entry.valid_from > at or not _matches(entry, analyte, strip_lot):
            continue
        current = newest.get(entry.scope)
        if current is None or (entry.valid_from, entry.entry_id) > (current.valid_from, current.entry_id):
            newest[entry.scope] = entry
    thresholds = base or Thresholds()
    used: list[RegistryEntry] = []
    for scope in (Scope.PROJECT, Scope.ANALYTE, Scope.STRIP_LOT):
        if scope in newest:
            thresholds = thresholds_from(newest[scope].params, thresholds)
            used.append(newest[scope])
    return Resolved(thresholds, tuple(e.entry_id for e in used), tuple(e.scope.value for e in used))


class Registry:
    """The registry entries indexed for fast lookups, memoising each distinct layering.

    ``resolve(analyte, strip_lot, at)`` equals the module function :func:`resolve`
    over the same entries; a batch of readings costs a few bisections each.
    """

    def __init__(self, entries: Iterable[RegistryEntry], base: Thresholds | None = None) -> None:
        self.base = base or Thresholds()
        self._by_key: dict[tuple[Scope, str | None, str | None], list[RegistryEntry]] = {}
        for entry in entries:
            key = (
                entry.scope,
                entry.analyte if entry.scope is not Scope.PROJECT else None,
                entry.strip_lot if entry.scope is Scope.STRIP_LOT else None,
            )
            self._by_key.setdefault(key, []).append(entry)
        for versions in self._by_key.values():
            versions.sort(key=lambda e: (e.valid_from, e.entry_id))
        self._starts = {k: [e.valid_from for e in v] for k, v in self._by_key.items()}
        self._memo: dict[tuple[int, ...], Resolved] = {}

    def _newest(self, key: tuple[Scope, str | None, str | None], at: datetime) -> RegistryEntry | None:
        versions = self._by_key.get(key)
        if not versions:
            return None
        i = bisect_right(self._starts[key], at)
        return versions[i - 1] if i else None

    def resolve(self, analyte: str, strip_lot: str, at: datetime) -> Resolved:
        chosen = [
            self._newest((Scope.PROJECT, None, None), at),
            self._newest((Scope.ANALYTE, analyte, None), at),
            self._newest((Scope.STRIP_LOT, analyte, strip_lot), at),
        ]
        used = [e for e in chosen if e is not None]
        ids = tuple(e.entry_id for e in used)
        found = self._memo.get(ids)
        if found is None:
            found = resolve(used, analyte, strip_lot, at, self.base)
            self._memo[ids] = found
        return found


@dataclass(frozen=True)
class Signal:
    """The numbers a verdict depends on, whatever the transport."""

    method: Method
    c_line: float | None = None
    t_line: float | None = None
    inhibition_pct: float | None = None


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    rule: str
    reason: str
    ratio: float | None = None
    concentration: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def polynomial(coefficients: tuple[float, ...], x: float) -> float:
    """``c0 + c1*x + c2*x**2 + ...`` (Horner)."""
    total = 0.0
    for c in reversed(coefficients):
        total = total * x + c
    return total


def judge(signal: Signal, th: Thresholds) -> Judgement:
    """The server verdict for one strip (DOMAIN.md §1)."""
    if signal.method is Method.ENZYME_INHIBITION:
        return _judge_inhibition(signal, th)
    c, t = signal.c_line, signal.t_line
    if c is None or t is None:
        return Judgement(Verdict.INVALID, "missing_signal", "colloidal gold needs both C and T line intensities")
    if c <= th.c_min:
        return Judgement(Verdict.INVALID, "c_min", f"C line {c:g} <= c_min {th.c_min:g}: control line missing or weak")
    if th.mode is Mode.T_ONLY:
        return _banded(t, th.t_pos, th.t_neg, "t_only", f"T {t:g}", None)
    ratio = t / c
    if th.mode is Mode.RATIO:
        return _banded(ratio, th.r_pos, th.r_neg, "ratio", f"T/C {ratio:.4f}", ratio)
    return _judge_semi_quantitative(t, ratio, th)


def _banded(value: float, pos: float, neg: float, rule: str, label: str, ratio: float | None) -> Judgement:
    """Competitive format: a low value is positive, a high one negative."""
    if value <= pos:
        return Judgement(Verdict.POSITIVE, rule, f"{label} <= {pos:g}", ratio)
    if value >= neg:
        return Judgement(Verdict.NEGATIVE, rule, f"{label} >= {neg:g}", ratio)
    return Judgement(Verdict.SUSPICIOUS, rule, f"{pos:g} < {label} < {neg:g}", ratio)


def _judge_semi_quantitative(t: float, ratio: float, th: Thresholds) -> Judgement:
    x = t if th.calibration_input is CalibrationInput.T else ratio
    conc = polynomial(th.calibration, x)
    limit = th.limit if th.limit is not None else math.inf
    if conc >= limit:
        verdict, reason = Verdict.POSITIVE, f"concentration {conc:.4g} >= limit {limit:g}"
    elif th.suspicious_from is not None and conc >= th.suspicious_from:
        verdict, reason = Verdict.SUSPICIOUS, f"{th.suspicious_from:g} <= concentration {conc:.4g} < limit {limit:g}"
    else:
        verdict, reason = Verdict.NEGATIVE, f"concentration {conc:.4g} < limit {limit:g}"
    return Judgement(verdict, "semi_quantitative", reason, ratio=ratio, concentration=conc)


def _judge_inhibition(signal: Signal, th: Thresholds) -> Judgement:
    pct = signal.inhibition_pct
    if pct is None:
        return Judgement(Verdict.INVALID, "missing_signal", "enzyme inhibition needs inhibition_pct")
    if pct >= th.inhibition_fail_pct:
        return Judgement(Verdict.POSITIVE, "inhibition", f"inhibition {pct:g}% >= {th.inhibition_fail_pct:g}%")
    if th.inhibition_suspicious_pct is not None and pct >= th.inhibition_suspicious_pct:
        return Judgement(
            Verdict.SUSPICIOUS, "inhibition", f"{th.inhibition_suspicious_pct:g}% <= inhibition {pct:g}% < fail"
        )
    return Judgement(Verdict.NEGATIVE, "inhibition", f"inhibition {pct:g}% < {th.inhibition_fail_pct:g}%")


def cutoff_disagrees(device_cutoff: float | None, th: Thresholds) -> bool:
    """A device-reported ratio cut-off that is not the registry's ``r_pos``."""
    if device_cutoff is None or th.mode is not Mode.RATIO:
        return False
    return abs(device_cutoff - th.r_pos) > th.cutoff_tolerance
