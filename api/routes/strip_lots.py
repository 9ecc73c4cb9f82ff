"""Strip lots: tests, invalid rate and false-positive rate per (analyte, strip lot) — the figure a
regulator takes to a kit maker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.deps import ClockDep, Db, Principal, SettingsDep, require_role
from api.errors import ApiError
from api.pagination import Page, decode_cursor, page_of, page_size
from schemas.common import AwareDatetime, Identifier
from storage.stats import StripLotFilter, list_strip_lots

router = APIRouter(prefix="/v1/strip-lots", tags=["devices"])
Staff = Annotated[Principal, Depends(require_role("operator", "regulator"))]
MAX_RANGE = timedelta(days=800)






class QualityFigures(BaseModel):
    tests: int
    invalid: int
    false_positives: int
    confirmed_positives: int
    invalid_rate: float | None
    false_positive_rate: float | None  # false positives / (false positives + confirmed positives)


class StripLot(QualityFigures):
    analyte: str
    strip_lot: str
    negative: int
    positive: int
    suspicious: int
    verdict_mismatch: int


@router.get("", response_model=Page[StripLot])
def strip_lots(
    db: Db,
    principal: Staff,
    settings: SettingsDep,
    clock: ClockDep,
    since: Annotated[AwareDatetime | None, Query(description="measured_at >= since; default 90 days ago")] = None,
    until: Annotated[AwareDatetime | None, Query(description="measured_at < until; default now")] = None,
    market_id: Identifier | None = None,
    analyte: Identifier | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[StripLot]:
    """Per strip lot over a time range: tests by server verdict, invalid rate, false positives (lab-negative
    releases), confirmed positives and the false-positive rate, by analyte and lot."""
    end = (until or clock()).astimezone(UTC)
    start = (since or end - timedelta(days=90)).astimezone(UTC)
    if start >= end or end - start > MAX_RANGE:
        raise ApiError(422, "invalid_request", f"need since < until, at most {MAX_RANGE.days} days apart")
    size = page_size(limit, settings)
    if market_id is not None and not principal.sees_market(market_id):
        return Page(items=[])
    after = None
    if cursor is not None:
        a, lot = decode_cursor(cursor, 2)
        after = (str(a), str(lot))
    # hourly buckets: a range is widened to whole hours (a bucket counts whole when it starts inside)
    f = StripLotFilter(_floor(start), _floor(end), principal.market_filter(), market_id, analyte)
    rows = list_strip_lots(db, f, size + 1, after)
    return page_of(rows, size, lambda r: [r["analyte"], r["strip_lot"]], lambda r: StripLot(**r))


def _floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)
