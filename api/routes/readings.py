"""Readings as stored, each with the server's verdict beside the device's: filtered, newest first,
cursor-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import CurrentPrincipal, Db, SettingsDep
from api.errors import ApiError
from api.pagination import Page, decode_time_cursor, page_of, page_size, time_key
from schemas.common import AwareDatetime, Identifier
from schemas.reading import Verdict
from storage.readings import ReadingFilter, get_reading, list_readings

router = APIRouter(prefix="/v1/readings", tags=["readings"])


class ReadingOut(BaseModel):
    """A reading as published, the ids of record from its topic, and how the server judged it."""

    reading_id: str
    measured_at: datetime
    received_at: datetime
    stored_at: datetime
    market_id: str
    station_id: str
    device_id: str
    sample_id: str | None
    commodity: str
    commodity_category: str | None
    vendor_id: str | None
    certificate_no: str | None
    lot_code: str | None
    analyte: str
    method: str
    method_standard: str | None
    strip_lot: str
    cutoff_ratio: float | None
    c_line: float | None
    t_line: float | None
    inhibition_pct: float | None
    device_result: str | None
    operator_id: str | None
    firmware: str | None
    server_result: str | None  # None until the flagger has judged it
    agrees: bool | None  # device verdict == server verdict; None when either is missing
    verdict_mismatch: bool | None
    cutoff_mismatch: bool | None
    rule: str | None
    reason: str | None
    ratio: float | None
    raw: dict[str, Any] | None = None


class ReadingDetail(ReadingOut):
    thresholds_used: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None


@router.get("", response_model=Page[ReadingOut], response_model_exclude_none=False)
def readings(
    db: Db,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    market_id: Identifier | None = None,
    station_id: Identifier | None = None,
    device_id: Identifier | None = None,
    analyte: Identifier | None = None,
    commodity: Annotated[str | None, Query(max_length=200)] = None,
    verdict: Annotated[Verdict | None, Query(description="the server's verdict")] = None,
    device_result: Annotated[Verdict | None, Query(description="the device's verdict")] = None,
    result: Annotated[
        Verdict | None, Query(description="the device's verdict: an alias of device_result, kept for old clients")
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="measured_at >= since (RFC 3339)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="measured_at < until (RFC 3339)")] = None,
    include_raw: bool = False,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[ReadingOut]:
    """Readings filtered by market, station, device, analyte, commodity, server verdict (``verdict``),
    device verdict (``device_result``, alias ``result``) and time, newest first; each shows both
    verdicts and whether they agree."""
    if result is not None and device_result is not None and result != device_result:
        raise ApiError(422, "invalid_request", "result is an alias of device_result: give one, or the same value")
    device = device_result or result
    size = page_size(limit, settings)
    if market_id is not None and not principal.sees_market(market_id):
        return Page(items=[])
    f = ReadingFilter(
        markets=principal.market_filter(), market_id=market_id, station_id=station_id, device_id=device_id,
        analyte=analyte, commodity=commodity, device_result=device.value if device else None,
        server_result=verdict.value if verdict else None, since=since, until=until,
    )
    rows = list_readings(db, f, size + 1, decode_time_cursor(cursor), include_raw)
    return page_of(rows, size, lambda r: time_key(r["measured_at"], r["reading_id"]), lambda r: ReadingOut(**r))


@router.get("/{reading_id}", response_model=ReadingDetail)
def reading(reading_id: UUID, db: Db, principal: CurrentPrincipal) -> ReadingDetail:
    """One reading with its raw payload as published, both verdicts and the thresholds it was judged by
    (found through ``reading_ids``: one chunk on TimescaleDB)."""
    found = get_reading(db, reading_id, principal.market_filter())
    if found is None:
        raise ApiError(404, "not_found", f"no reading {reading_id}")
    return ReadingDetail(**found)
