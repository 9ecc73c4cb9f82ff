"""Rules that come from the market registry (DOMAIN.md §3): posting deadlines by market kind,
station working hours, administrative region codes.

Pure: no I/O.  The registry (``storage/registry.py``) turns its rows into these values.

* :func:`posting_deadline`: results are posted at wholesale markets by 08:00 and at
  farmers' markets (and every other kind) by 09:00 the next day, in the market's time zone;
* :class:`WorkingHours`: a station's opening hours per weekday; silence of a reader is
  counted only inside them (``domain.anomaly.silent_devices``);
* :func:`region_parts`: a 12-digit statistical division code is 6 digits county,
  3 town, 3 village; a market sits in a town (village part ``000``) or a village.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIME_ZONE = "Asia/Shanghai"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REGION_CODE_RE = re.compile(r"^\d{12}$")
_SPAN_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class MarketKind(StrEnum):
    FARMERS = "farmers"
    WHOLESALE = "wholesale"
    SUPERMARKET = "supermarket"
    VILLAGE_STATION = "village_station"


class RegionLevel(StrEnum):
    COUNTY = "county"
    TOWN = "town"
    VILLAGE = "village"


@dataclass(frozen=True)
class PostingHours:
    """Local hour of the next day by which results must be posted (DOMAIN.md §3)."""

    wholesale: int = 8
    other: int = 9

    def of(self, kind: MarketKind) -> int:
        return self.wholesale if kind is MarketKind.WHOLESALE else self.other


@dataclass(frozen=True)
class MarketRules:
    """What the deadline rules need to know of one registered market."""

    kind: MarketKind
    time_zone: str = DEFAULT_TIME_ZONE


def posting_deadline(since: datetime, market: MarketRules, hours: PostingHours | None = None) -> datetime:
    """The next day's posting hour, local to the market, for a step that began at ``since`` (UTC)."""
    hours = hours or PostingHours()
    zone = ZoneInfo(market.time_zone)
    day = since.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(day, time(hours.of(market.kind)), zone).astimezone(UTC)


def check_time_zone(name: str) -> str:
    """``name`` if it is an IANA zone this machine knows, else ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


# --- working hours -------------------------------------------------------------------------


Span = tuple[time, time]


def parse_span(text: str) -> Span:
    """``"06:00-18:00"`` → (06:00, 18:00); the end may be ``24:00``; the end must follow the start."""
    match = _SPAN_RE.match(text.strip())
    if not match:
        raise ValueError(f"working hours {text!r} are not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h2 == 24 and m2 != 0:
        raise ValueError(f"working hours {text!r}: 24:00 is the latest end")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"working hours {text!r} end before they start")
    return start, end


def format_span(span: Span) -> str:
    end = "24:00" if span[1] == time.max else span[1].strftime("%H:%M")
    return f"{span[0].strftime('%H:%M')}-{end}"


@dataclass(frozen=True)
class WorkingHours:
    """Opening hours per weekday (Monday first); ``None`` for a closed day."""

    days: tuple[Span | None, ...]
    time_zone: str = DEFAULT_TIME_ZONE

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("working hours need 7 weekdays")

    @classmethod
    def daily(cls, start: time, end: time, time_zone: str = DEFAULT_TIME_ZONE) -> WorkingHours:
        return cls(((start, end),) * 7, time_zone)

    @classmethod
    def from_mapping(cls, hours: Mapping[str, str | None], time_zone: str = DEFAULT_TIME_ZONE) -> WorkingHours:
        """``{"mon": "06:00-18:00", ..., "sun": null}``; a weekday left out is closed."""
        unknown = set(hours) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekdays {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        days = tuple(parse_span(v) if v else None for v in (hours.get(d) for d in WEEKDAYS))
        return cls(days, time_zone)

    def to_mapping(self) -> dict[str, str | None]:
        return {d: format_span(s) if s else None for d, s in zip(WEEKDAYS, self.days, strict=True)}

    def _spans(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        zone = ZoneInfo(self.time_zone)
        out = []
        day = start.astimezone(zone).date()
        last = end.astimezone(zone).date()
        while day <= last:
            span = self.days[day.weekday()]
            if span is not None:
                open_at = datetime.combine(day, span[0], zone).astimezone(UTC)
                close_at = (datetime.combine(day + timedelta(days=1), time(0), zone) if span[1] == time.max
                            else datetime.combine(day, span[1], zone)).astimezone(UTC)
                out.append((open_at, close_at))
            day += timedelta(days=1)
        return out

    def is_open(self, moment: datetime) -> bool:
        return any(lo <= moment < hi for lo, hi in self._spans(moment, moment))

    def open_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much of ``[start, end)`` falls inside the opening hours."""
        if end <= start:
            return timedelta(0)
        total = timedelta(0)
        for open_at, close_at in self._spans(start, end):
            lo, hi = max(open_at, start), min(close_at, end)
            if hi > lo:
                total += hi - lo
        return total


# --- region codes --------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionParts:
    county: str  # 12 digits, town and village parts 000
    town: str | None  # 12 digits, village part 000
    village: str | None
    level: RegionLevel


def region_parts(code: str) -> RegionParts:
    """Split a 12-digit division code; ValueError for anything else."""
    if not REGION_CODE_RE.match(code):
        raise ValueError(f"region code {code!r} is not 12 digits (6 county, 3 town, 3 village)")
    county = code[:6] + "000000"
    if code[6:9] == "000":
        if code[9:] != "000":
            raise ValueError(f"region code {code!r} has a village part but no town part")
        return RegionParts(county, None, None, RegionLevel.COUNTY)
    town = code[:9] + "000"
    if code[9:] == "000":
        return RegionParts(county, town, None, RegionLevel.TOWN)
    return RegionParts(county, town, code, RegionLevel.VILLAGE)


def market_region(code: str) -> RegionParts:
    """A market's region: a town or a village, never a whole county."""
    parts = region_parts(code)
    if parts.level is RegionLevel.COUNTY:
        raise ValueError(f"region code {code!r} is a county; a market sits in a town or a village")
    return parts
