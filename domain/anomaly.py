"""Anomalies that no single strip shows (DOMAIN.md §3, §5).

Pure: no I/O.  Two detectors:

* :func:`invalid_rate_anomaly`: the invalid-strip rate of one device or one
  strip lot over a recent sliding window, compared with that same subject's
  own baseline (its earlier readings).  A subject with too short a history is
  compared with a prior rate (DOMAIN.md §5: about 1%).
* :func:`silent_devices`: a reader that has published nothing for a while
  *counting only its station's working hours*, so a quiet night is not an alarm.

All limits are configuration defaults (uncertain) in :class:`AnomalyRules`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.registry_rules import WorkingHours


@dataclass(frozen=True)
class AnomalyRules:
    window: timedelta = timedelta(hours=2)
    baseline: timedelta = timedelta(days=7)
    # 2 of 20 invalid at a 1% baseline happens by chance in 1.7% of windows; 5 of 50 in 0.02%
    min_window_tests: int = 50
    min_baseline_tests: int = 100
    prior_invalid_rate: float = 0.01
    factor: float = 3.0
    min_window_rate: float = 0.10
    z_min: float = 3.0
    working_start: time = time(6, 0)
    working_end: time = time(18, 0)
    timezone: str = "Asia/Shanghai"
    silence_after: timedelta = timedelta(hours=1)
    forget_after: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Counts:
    tests: int
    invalid: int

    @property
    def rate(self) -> float:
        return self.invalid / self.tests if self.tests else 0.0


@dataclass(frozen=True)
class RateAnomaly:
    window_rate: float
    baseline_rate: float
    window: Counts
    baseline: Counts
    z: float
    baseline_source: str

    def describe(self) -> str:
        return (
            f"invalid rate {self.window_rate:.1%} over the last {self.window.tests} tests vs "
            f"{self.baseline_source} baseline {self.baseline_rate:.1%} (z={self.z:.1f})"
        )


def invalid_rate_anomaly(window: Counts, baseline: Counts, rules: AnomalyRules | None = None) -> RateAnomaly | None:
    """An anomaly when the window's invalid rate is well above the subject's baseline.

    "Well above" = at least ``min_window_tests`` tests, a rate of at least
    ``min_window_rate`` and ``factor`` times the baseline, and a binomial
    z-score of at least ``z_min`` against the baseline rate.
    """
    rules = rules or AnomalyRules()
    if window.tests < rules.min_window_tests:
        return None
    if baseline.tests >= rules.min_baseline_tests:
        base_rate, source = baseline.rate, "own"
    else:
        base_rate, source = rules.prior_invalid_rate, "prior"
    rate = window.rate
    if rate < rules.min_window_rate or rate < rules.factor * base_rate:
        return None
    p = min(max(base_rate, 1e-4), 1 - 1e-4)
    z = (rate - p) / math.sqrt(p * (1 - p) / window.tests)
    if z < rules.z_min:
        return None
    return RateAnomaly(rate, base_rate, window, baseline, z, source)


def working_time_between(start: datetime, end: datetime, rules: AnomalyRules | None = None) -> timedelta:
    """How much of ``[start, end)`` falls inside the daily working hours (local time)."""
    rules = rules or AnomalyRules()
    if end <= start:
        return timedelta(0)
    tz = ZoneInfo(rules.timezone)
    total = timedelta(0)
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day <= last:
        open_at = datetime.combine(day, rules.working_start, tz).astimezone(UTC)
        close_at = datetime.combine(day, rules.working_end, tz).astimezone(UTC)
        lo, hi = max(open_at, start), min(close_at, end)
        if hi > lo:
            total += hi - lo
        day += timedelta(days=1)
    return total


def in_working_hours(moment: datetime, rules: AnomalyRules | None = None) -> bool:
    rules = rules or AnomalyRules()
    local = moment.astimezone(ZoneInfo(rules.timezone)).time()
    return rules.working_start <= local < rules.working_end


@dataclass(frozen=True)
class DeviceSeen:
    device_id: str
    market_id: str
    station_id: str
    last_seen: datetime


@dataclass(frozen=True)
class Silence:
    device: DeviceSeen
    silent_for: timedelta


def silent_devices(seen: Iterable[DeviceSeen], now: datetime, rules: AnomalyRules | None = None,
                   station_hours: Mapping[tuple[str, str], WorkingHours] | None = None) -> list[Silence]:
    """Readers silent for ``silence_after`` of working time, checked only during working hours.

    Working hours are the station's in the registry (``station_hours`` by (market_id, station_id)),
    else the daily ``working_start``-``working_end`` of ``rules``.
    A device not seen for ``forget_after`` is taken as retired, not silent.
    """
    rules = rules or AnomalyRules()
    default = WorkingHours.daily(rules.working_start, rules.working_end, rules.timezone)
    found = []
    for device in seen:
        if now - device.last_seen > rules.forget_after:
            continue
        hours = (station_hours or {}).get((device.market_id, device.station_id), default)
        if not hours.is_open(now):
            continue
        quiet = hours.open_time_between(device.last_seen, now)
        if quiet >= rules.silence_after:
            found.append(Silence(device, quiet))
    return found
