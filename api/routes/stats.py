"""Pass-rate statistics (合格率), failures by kind, closure rate (处置率) and median time to closure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import ClockDep, Db, Principal, require_role
from api.errors import ApiError
from api.pagination import Page, decode_cursor, page_of
from schemas.common import AwareDatetime, Identifier
from storage.stats import Bucket, GroupBy, StatsQuery, pass_rate_rows

router = APIRouter(tags=["stats"])
#: Market operators and regulators; producers only submit certificates (SPEC.md "Access").
Staff = Annotated[Principal, Depends(require_role("operator", "regulator"))]

MAX_RANGE = timedelta(days=800)
PAGE_DEFAULT = 1000
PAGE_MAX = 10_000


def _hour_floor(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(t: datetime) -> datetime:
    floor = _hour_floor(t)
    return floor if floor == t else floor + timedelta(hours=1)


def _zone(tz: str) -> str:
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(422, "invalid_request", f"unknown time zone {tz!r}") from None
    offset = datetime(2026, 1, 1, tzinfo=zone).utcoffset() or timedelta(0)
    if offset % timedelta(hours=1):
        raise ApiError(422, "invalid_request", "day/week buckets need a time zone with a whole-hour offset")
    return tz


class FailuresByKind(BaseModel):
    positive: int
    suspicious: int
    invalid: int
    verdict_mismatch: int
    cutoff_mismatch: int


class PassRateRow(BaseModel):
    """One (bucket, group): tests by verdict, 合格率, and the closure figures of its screen failures."""

    bucket_start: datetime
    group: str
    group_name: str | None = Field(None, description="the region's name (group_by town or village only)")
    tests: int
    valid_tests: int = Field(description="tests less invalid strips")
    negative: int
    failures_by_kind: FailuresByKind
    pass_rate: float | None = Field(description="negative / valid tests; null without valid tests")
    screen_failures: int
    false_positives: int
    confirmed_positives: int
    false_positive_rate: float | None
    closed: int
    closure_rate: float | None = Field(description="closed / screen failures (处置率)")
    median_hours_to_close: float | None


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    bucket, group = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(bucket), str(group)
    except (TypeError, ValueError):
        raise ApiError(400, "bad_cursor", "cursor is not one this API issued") from None


#: ``group_name`` is only in the rows of a town or village grouping: unset fields stay out of the JSON.
@router.get("/v1/stats/pass-rate", response_model=Page[PassRateRow], response_model_exclude_unset=True)
def pass_rate(
    db: Db,
    principal: Staff,
    clock: ClockDep,
    group_by: GroupBy = GroupBy.MARKET,
    bucket: Bucket = Bucket.DAY,
    since: Annotated[AwareDatetime | None, Query(description="start (RFC 3339), floored to the hour")] = None,
    until: Annotated[AwareDatetime | None, Query(description="end (RFC 3339), raised to the hour")] = None,
    tz: Annotated[str, Query(max_length=64, description="IANA zone of day/week buckets")] = "Asia/Shanghai",
    market_id: Identifier | None = None,
    limit: Annotated[int | None, Query(ge=1, le=PAGE_MAX)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[PassRateRow]:
    """Tests, failures by kind, pass rate, closure rate and median time to closure per group and bucket."""
    end = _hour_ceil(until or clock())
    start = _hour_floor(since or end - timedelta(days=7))
    if start >= end or end - start > MAX_RANGE:
        raise ApiError(422, "invalid_request", f"need since < until, at most {MAX_RANGE.days} days apart")
    if market_id is not None and not principal.sees_market(market_id):
        return Page[PassRateRow](items=[], next_cursor=None)
    query = StatsQuery(group_by, bucket, start, end, _zone(tz), principal.market_filter(), market_id)
    size = limit or PAGE_DEFAULT
    rows = pass_rate_rows(db, query, size + 1, _after(cursor))
    return page_of(rows, size, lambda r: [r["bucket_start"].isoformat(), r["group"]], lambda r: PassRateRow(**r))
