"""Readings as stored: filtered, newest first, cursor-paginated."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import CurrentPrincipal, Db, SettingsDep
from api.errors import ApiError
from api.pagination import Page, decode_time_cursor, encode_time_cursor
from api.queries.readings import ReadingFilter, list_readings
from schemas.common import AwareDatetime, Identifier
from schemas.reading import Verdict
from storage.readings import get_reading

router = APIRouter(prefix="/v1/readings", tags=["readings"])


@router.get("", response_model=Page[dict[str, Any]])
def readings(
    db: Db,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    market_id: Identifier | None = None,
    station_id: Identifier | None = None,
    device_id: Identifier | None = None,
    analyte: Identifier | None = None,
    commodity: Annotated[str | None, Query(max_length=200)] = None,
    result: Annotated[Verdict | None, Query(description="the device's verdict")] = None,
    since: Annotated[AwareDatetime | None, Query(description="measured_at >= since (RFC 3339)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="measured_at < until (RFC 3339)")] = None,
    include_raw: bool = False,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[dict[str, Any]]:
    """Readings filtered by market, station, device, analyte, commodity, result and time, newest first."""
    size = min(limit or settings.api_page_default, settings.api_page_max)
    if market_id is not None and not principal.sees_market(market_id):
        return Page(items=[])
    f = ReadingFilter(
        markets=principal.market_filter(), market_id=market_id, station_id=station_id, device_id=device_id,
        analyte=analyte, commodity=commodity, device_result=result.value if result else None, since=since,
        until=until,
    )
    rows = list_readings(db, f, size + 1, decode_time_cursor(cursor), include_raw)
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = encode_time_cursor(last["measured_at"], last["reading_id"])
    return Page(items=rows, next_cursor=next_cursor)


@router.get("/{reading_id}")
def reading(reading_id: UUID, db: Db, principal: CurrentPrincipal) -> dict[str, Any]:
    """One reading with its raw payload as published."""
    found = get_reading(db, reading_id, principal.market_filter())
    if found is None:
        raise ApiError(404, "not_found", f"no reading {reading_id}")
    return found
