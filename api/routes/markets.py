"""The registry: markets, their stations and working hours, region names, unregistered markets.

Regulators edit it; operators read their own markets.  Readings never depend on it: a market
readers report that is not here is listed by ``GET /v1/registry/unregistered-markets``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.deps import Db, Principal, SettingsDep, require_role
from api.errors import ApiError
from api.pagination import Page, decode_cursor, page_of, page_size
from domain.registry_rules import (
    DEFAULT_TIME_ZONE,
    WEEKDAYS,
    MarketKind,
    RegionLevel,
    WorkingHours,
    check_time_zone,
    market_region,
    region_parts,
)
from schemas.common import Identifier
from storage import registry
from storage.audit import record_audit

router = APIRouter(tags=["registry"])
Regulator = Annotated[Principal, Depends(require_role("regulator"))]
Staff = Annotated[Principal, Depends(require_role("operator", "regulator"))]
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{12}$", description="12 digits: 6 county, 3 town, 3 village")]




class MarketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_zh: str = Field(min_length=1, max_length=200, pattern=PLAIN_TEXT)
    name_en: str | None = Field(None, max_length=200, pattern=PLAIN_TEXT)
    kind: MarketKind
    region_code: RegionCode
    grid_id: Identifier | None = None
    address: str | None = Field(None, max_length=500, pattern=PLAIN_TEXT)
    time_zone: str = Field(DEFAULT_TIME_ZONE, max_length=64)

    @field_validator("region_code")
    @classmethod
    def _town_or_village(cls, v: str) -> str:
        market_region(v)
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_time_zone(v)


class Hours(BaseModel):
    """Opening hours per weekday, ``"HH:MM-HH:MM"`` (end up to ``24:00``); null or absent: closed."""

    model_config = ConfigDict(extra="forbid")

    mon: str | None = None
    tue: str | None = None
    wed: str | None = None
    thu: str | None = None
    fri: str | None = None
    sat: str | None = None
    sun: str | None = None

    @model_validator(mode="after")
    def _spans(self) -> Hours:
        WorkingHours.from_mapping(self.model_dump())
        return self


class StationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=PLAIN_TEXT)
    hours: Hours


class StationOut(BaseModel):
    market_id: str
    station_id: str
    name: str
    hours: dict[str, str | None]
    updated_at: datetime | None = None
    updated_by: str | None = None


class MarketOut(BaseModel):
    market_id: str
    name_zh: str
    name_en: str | None
    kind: MarketKind
    region_code: str
    town_code: str | None
    town_name: str | None
    village_name: str | None
    grid_id: str | None
    address: str | None
    time_zone: str
    updated_at: datetime | None = None
    updated_by: str | None = None
    stations: list[StationOut] | None = None


class UnregisteredOut(BaseModel):
    market_id: str
    devices: int
    tests: int
    first_seen: datetime
    last_seen: datetime


class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: RegionCode
    name_zh: str = Field(min_length=1, max_length=100, pattern=PLAIN_TEXT)
    name_en: str | None = Field(None, max_length=200, pattern=PLAIN_TEXT)

    @field_validator("code")
    @classmethod
    def _shape(cls, v: str) -> str:
        region_parts(v)
        return v


class RegionOut(BaseModel):
    code: str
    level: RegionLevel
    name_zh: str
    name_en: str | None


def _station_out(s: registry.Station) -> StationOut:
    return StationOut(market_id=s.market_id, station_id=s.station_id, name=s.name, hours=s.hours,
                      updated_at=s.updated_at, updated_by=s.updated_by)


def _market_out(m: registry.Market, names: dict[str, str], stations: list[registry.Station] | None = None
                ) -> MarketOut:
    parts = market_region(m.region_code)
    return MarketOut(
        market_id=m.market_id, name_zh=m.name_zh, name_en=m.name_en, kind=m.kind, region_code=m.region_code,
        town_code=parts.town, town_name=names.get(parts.town or ""),
        village_name=names.get(parts.village or ""), grid_id=m.grid_id, address=m.address,
        time_zone=m.time_zone, updated_at=m.updated_at, updated_by=m.updated_by,
        stations=[_station_out(s) for s in stations] if stations is not None else None,
    )


def _names(db: Db, found: list[registry.Market]) -> dict[str, str]:
    codes: set[str] = set()
    for m in found:
        parts = market_region(m.region_code)
        codes.update(c for c in (parts.town, parts.village) if c)
    return registry.region_names(db, codes)


def _not_found(market_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no registered market {market_id}")


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    (after,) = decode_cursor(cursor, 1)
    if not isinstance(after, str):
        raise ApiError(400, "bad_cursor", "cursor is not one this API issued")
    return after


Limit = Annotated[int | None, Query(ge=1)]
Cursor = Annotated[str | None, Query(max_length=500)]


@router.get("/v1/markets", response_model=Page[MarketOut])
def market_list(db: Db, principal: Staff, settings: SettingsDep, kind: MarketKind | None = None,
                region: Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$",
                                                    description="a region code prefix (county, town)")] = None,
                limit: Limit = None, cursor: Cursor = None) -> Page[MarketOut]:
    """Registered markets by id (an operator sees its own)."""
    size = page_size(limit, settings)
    found = registry.list_markets(db, limit=size + 1, after=_after(cursor), kind=kind, region_prefix=region,
                                  markets=principal.market_filter())
    page = page_of(found, size, lambda m: [m.market_id])
    names = _names(db, page.items)
    return Page(items=[_market_out(m, names) for m in page.items], next_cursor=page.next_cursor)


@router.get("/v1/markets/{market_id}", response_model=MarketOut)
def market_get(market_id: Identifier, db: Db, principal: Staff) -> MarketOut:
    """One market with its stations and working hours."""
    m = registry.get_market(db, market_id) if principal.sees_market(market_id) else None
    if m is None:
        raise _not_found(market_id)
    return _market_out(m, _names(db, [m]), registry.list_stations(db, market_id))


@router.put("/v1/markets/{market_id}", response_model=MarketOut, responses={201: {"model": MarketOut}})
def market_put(market_id: Identifier, body: MarketIn, db: Db, principal: Regulator, response: Response) -> MarketOut:
    """Register a market or replace its entry (201 when new)."""
    m = registry.Market(market_id=market_id, name_zh=body.name_zh, name_en=body.name_en, kind=body.kind,
                        region_code=body.region_code, grid_id=body.grid_id, address=body.address,
                        time_zone=body.time_zone)
    saved, created = registry.upsert_market(db, m, principal.name)
    record_audit(db, principal.name, "market.put", f"market:{market_id}", body.model_dump(mode="json"))
    db.commit()
    response.status_code = 201 if created else 200
    return _market_out(saved, _names(db, [saved]), registry.list_stations(db, market_id))


@router.delete("/v1/markets/{market_id}", status_code=204)
def market_delete(market_id: Identifier, db: Db, principal: Regulator) -> Response:
    """Remove a market and its stations; its readings stay, listed as unregistered."""
    if not registry.delete_market(db, market_id):
        raise _not_found(market_id)
    record_audit(db, principal.name, "market.delete", f"market:{market_id}")
    db.commit()
    return Response(status_code=204)


@router.put("/v1/markets/{market_id}/stations/{station_id}", response_model=StationOut,
            responses={201: {"model": StationOut}})
def station_put(market_id: Identifier, station_id: Identifier, body: StationIn, db: Db, principal: Regulator,
                response: Response) -> StationOut:
    """Add a station to a registered market or replace it (201 when new)."""
    if registry.get_market(db, market_id) is None:
        raise _not_found(market_id)
    hours = {d: getattr(body.hours, d) for d in WEEKDAYS}
    saved, created = registry.upsert_station(db, registry.Station(market_id, station_id, body.name, hours),
                                             principal.name)
    record_audit(db, principal.name, "station.put", f"station:{market_id}/{station_id}", body.model_dump())
    db.commit()
    response.status_code = 201 if created else 200
    return _station_out(saved)


@router.delete("/v1/markets/{market_id}/stations/{station_id}", status_code=204)
def station_delete(market_id: Identifier, station_id: Identifier, db: Db, principal: Regulator) -> Response:
    """Remove a station."""
    if not registry.delete_station(db, market_id, station_id):
        raise ApiError(404, "not_found", f"no station {station_id} in market {market_id}")
    record_audit(db, principal.name, "station.delete", f"station:{market_id}/{station_id}")
    db.commit()
    return Response(status_code=204)


@router.get("/v1/registry/unregistered-markets", response_model=Page[UnregisteredOut])
def unregistered(db: Db, _: Regulator, settings: SettingsDep, limit: Limit = None,
                 cursor: Cursor = None) -> Page[UnregisteredOut]:
    """Markets that readers report and the registry does not know: their readings are stored all the same."""
    size = page_size(limit, settings)
    found = registry.unregistered_markets(db, limit=size + 1, after=_after(cursor))
    return page_of(found, size, lambda u: [u.market_id], lambda u: UnregisteredOut(**vars(u)))


@router.get("/v1/registry/regions", response_model=list[RegionOut])
def region_list(db: Db, _: Staff, prefix: Annotated[str, Query(pattern=r"^[0-9]{0,12}$")] = "",
                limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[RegionOut]:
    """Region names (county, towns, villages) by code."""
    return [RegionOut(code=r.code, level=RegionLevel(r.level), name_zh=r.name_zh, name_en=r.name_en)
            for r in registry.list_regions(db, prefix, limit)]


@router.put("/v1/registry/regions", response_model=list[RegionOut])
def region_put(body: Annotated[list[RegionIn], Field(min_length=1, max_length=10_000)], db: Db,
               principal: Regulator) -> list[RegionOut]:
    """Add or rename regions (county, town or village by the shape of the code)."""
    rows = list({r.code: registry.Region(r.code, region_parts(r.code).level.value, r.name_zh, r.name_en)
                 for r in body}.values())  # a code named twice: the last name wins
    registry.upsert_regions(db, rows)
    record_audit(db, principal.name, "regions.put", "regions", {"codes": [r.code for r in body]})
    db.commit()
    return [RegionOut(code=r.code, level=RegionLevel(r.level), name_zh=r.name_zh, name_en=r.name_en) for r in rows]
