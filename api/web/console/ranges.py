"""Date ranges chosen on console pages: local (Asia/Shanghai) days and months, turned into UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from api.errors import ApiError
from api.web.templating import DISPLAY_TZ

MAX_DAYS = 800


def local_day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), DISPLAY_TZ).astimezone(UTC)


def parse_day(text: str | None, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "invalid_request", f"not a date (YYYY-MM-DD): {text[:20]!r}") from None


def day_range(since: str | None, until: str | None, now: datetime, default_days: int = 7) -> tuple[date, date]:
    """Inclusive local days; default the last ``default_days`` days up to today."""
    today = now.astimezone(DISPLAY_TZ).date()
    last = parse_day(until, today)
    first = parse_day(since, last - timedelta(days=default_days - 1))
    if first > last or (last - first).days > MAX_DAYS:
        raise ApiError(422, "invalid_request", f"need since <= until, at most {MAX_DAYS} days apart")
    return first, last


def instants(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of ``first``, start of the day after ``last``) in UTC."""
    return local_day_start(first), local_day_start(last + timedelta(days=1))


def parse_month(text: str | None, now: datetime) -> tuple[date, date]:
    """First and last day of ``YYYY-MM`` (default: last month)."""
    if text:
        try:
            year, month = (int(p) for p in text.split("-", 1))
            first = date(year, month, 1)
        except ValueError:
            raise ApiError(422, "invalid_request", f"not a month (YYYY-MM): {text[:20]!r}") from None
    else:
        this = now.astimezone(DISPLAY_TZ).date().replace(day=1)
        first = (this - timedelta(days=1)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)
