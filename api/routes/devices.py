"""Known strip readers: last seen, tests, invalid-strip rate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import Db, Principal, SettingsDep, require_role
from api.pagination import Page, decode_cursor, page_of, page_size
from api.routes.strip_lots import QualityFigures
from schemas.common import Identifier
from storage.device_reads import DeviceFilter, list_devices

router = APIRouter(prefix="/v1/devices", tags=["devices"])
#: Market operators and regulators; producers only submit certificates (SPEC.md "Access").
Staff = Annotated[Principal, Depends(require_role("operator", "regulator"))]


class Device(QualityFigures):
    device_id: str
    market_id: str
    station_id: str
    first_seen: datetime
    last_measured_at: datetime
    last_received_at: datetime
    last_seen: datetime
    negative: int
    positive: int
    suspicious: int
    verdict_mismatch: int


@router.get("", response_model=Page[Device])
def devices(
    db: Db,
    principal: Staff,
    settings: SettingsDep,
    market_id: Identifier | None = None,
    station_id: Identifier | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[Device]:
    """Devices the flagger has seen, by id: tests by server verdict, invalid rate, false positives
    (lab-negative releases), confirmed positives, false-positive rate, last seen."""
    size = page_size(limit, settings)
    if market_id is not None and not principal.sees_market(market_id):
        return Page(items=[])
    after = str(decode_cursor(cursor, 1)[0]) if cursor else None
    f = DeviceFilter(principal.market_filter(), market_id, station_id)
    rows = list_devices(db, f, size + 1, after)
    return page_of(rows, size, lambda r: [r["device_id"]], lambda r: Device(**r))
