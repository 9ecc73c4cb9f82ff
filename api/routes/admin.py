"""Administration for regulators: API tokens, reader MQTT credentials, and the audit log."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import psycopg2
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import DEFAULT_RATE_PER_MINUTE, TokenRequestError, issue_token, revoke_token
from api.deps import Db, Principal, SettingsDep, require_role
from api.errors import ApiError
from api.pagination import Page, decode_cursor, encode_cursor
from runtime.mqtt_auth import (
    IssuedCredentials,
    MosquittoFiles,
    add_device,
    bridge_filters,
    revoke_device,
    rotate_device,
    write_mosquitto_files,
)
from schemas.common import AwareDatetime, Identifier
from schemas.settings import Settings
from storage import devices, tokens
from storage.audit import list_audit
from storage.db import Connection

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Regulator = Annotated[Principal, Depends(require_role("regulator"))]
Limit = Annotated[int | None, Query(ge=1)]
#: Free text compared in SQL: no control characters (PostgreSQL text cannot hold NUL).
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"
Cursor = Annotated[str | None, Query(max_length=500)]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=PLAIN_TEXT, description="who holds the token")
    role: Literal["regulator", "operator", "producer"]
    markets: list[Identifier] | None = Field(None, max_length=1000, description="operator: its markets")
    holder_id: Identifier | None = Field(None, description="producer: the holder id it submits as")
    rate_per_minute: int = Field(DEFAULT_RATE_PER_MINUTE, ge=1, le=1_000_000)
    expires_at: AwareDatetime | None = None


class DeviceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    market_id: Identifier
    station_id: Identifier
    device_id: Identifier


def _size(limit: int | None, settings: Settings) -> int:
    return min(limit or settings.api_page_default, settings.api_page_max)


def _page(items: list[dict[str, Any]], size: int, key: str) -> Page[dict[str, Any]]:
    if len(items) > size:
        return Page(items=items[:size], next_cursor=encode_cursor([items[size - 1][key]]))
    return Page(items=items)


def _after(cursor: str | None) -> Any:
    return None if cursor is None else decode_cursor(cursor, 1)[0]


# ---------------------------------------------------------------- tokens


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, db: Db, principal: Regulator) -> dict[str, Any]:
    """Issue an API token; the secret is in this answer only."""
    try:
        issued = issue_token(db, name=body.name, role=body.role, markets=body.markets, holder_id=body.holder_id,
                             rate_per_minute=body.rate_per_minute, expires_at=body.expires_at, actor=principal.name)
    except TokenRequestError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    db.commit()
    return {"token": issued.token, **issued.record.as_dict()}


@router.get("/tokens", response_model=Page[dict[str, Any]])
def token_list(db: Db, _: Regulator, settings: SettingsDep, include_revoked: bool = False, limit: Limit = None,
               cursor: Cursor = None) -> Page[dict[str, Any]]:
    """API tokens (never their secrets), by token id."""
    after = _after(cursor)
    if after is not None and not isinstance(after, str):
        raise ApiError(400, "bad_cursor", "cursor is not one this API issued")
    size = _size(limit, settings)
    found = tokens.list_tokens(db, include_revoked=include_revoked, after=after, limit=size + 1)
    return _page([t.as_dict() for t in found], size, "token_id")


@router.post("/tokens/{token_id}/revoke")
def token_revoke(token_id: Annotated[str, Path(max_length=64)], db: Db, principal: Regulator) -> dict[str, Any]:
    """Revoke a token at once (idempotent)."""
    record = revoke_token(db, token_id, principal.name)
    if record is None:
        raise ApiError(404, "not_found", f"no token {token_id}")
    db.commit()
    return record.as_dict()


# ---------------------------------------------------------------- devices


def _sync_files(db: Connection, settings: Settings) -> dict[str, Any]:
    """After a committed registry change: rewrite Mosquitto's files when they are configured."""
    files = MosquittoFiles.from_settings(settings)
    if not files.configured:
        return {"status": "not_configured",
                "message": "set RT_MQTT_PASSWORD_FILE and RT_MQTT_ACL_FILE, or run `rapidtrace device write-acl`"}
    try:
        count = write_mosquitto_files(db, files, bridge_filters(settings))
    except Exception as exc:
        log.exception("could not write Mosquitto's files")
        return {"status": "failed", "message": f"{exc}; run `rapidtrace device write-acl` once it is fixed"}
    return {"status": "written", "accounts": count}


def _credentials(issued: IssuedCredentials, files: dict[str, Any]) -> dict[str, Any]:
    return {**issued.account.as_dict(), "password": issued.password, "topic": issued.topic,
            "mosquitto_files": files}


@router.post("/devices", status_code=201)
def device_add(body: DeviceRequest, db: Db, principal: Regulator, settings: SettingsDep) -> dict[str, Any]:
    """Register a reader: its MQTT username and password (shown only here) and the one topic it may publish to."""
    try:
        issued = add_device(db, body.market_id, body.station_id, body.device_id, principal.name)
    except devices.DeviceExists as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except psycopg2.IntegrityError as exc:
        raise ApiError(409, "conflict", f"cannot register {body.device_id}: {exc.pgerror or exc}") from None
    db.commit()
    return _credentials(issued, _sync_files(db, settings))


@router.get("/devices", response_model=Page[dict[str, Any]])
def device_list(db: Db, _: Regulator, settings: SettingsDep, market_id: Identifier | None = None,
                include_revoked: bool = False, limit: Limit = None, cursor: Cursor = None) -> Page[dict[str, Any]]:
    """Registered readers and their credential state (never a password or hash), by device id."""
    after = _after(cursor)
    if after is not None and not isinstance(after, str):
        raise ApiError(400, "bad_cursor", "cursor is not one this API issued")
    size = _size(limit, settings)
    found = devices.list_accounts(db, markets=[market_id] if market_id else None,
                                  include_revoked=include_revoked, after=after, limit=size + 1)
    return _page([a.as_dict() for a in found], size, "username")


@router.post("/devices/{device_id}/rotate")
def device_rotate(device_id: Identifier, db: Db, principal: Regulator, settings: SettingsDep) -> dict[str, Any]:
    """Give an active reader a new password (shown only here); the old one stops working."""
    issued = rotate_device(db, device_id, principal.name)
    if issued is None:
        raise ApiError(404, "not_found", f"no active device {device_id}")
    db.commit()
    return _credentials(issued, _sync_files(db, settings))


@router.post("/devices/{device_id}/revoke")
def device_revoke(device_id: Identifier, db: Db, principal: Regulator, settings: SettingsDep) -> dict[str, Any]:
    """Revoke a reader's MQTT account; the broker refuses it after its reload."""
    account = revoke_device(db, device_id, principal.name)
    if account is None:
        raise ApiError(404, "not_found", f"no device {device_id}")
    db.commit()
    return {**account.as_dict(), "mosquitto_files": _sync_files(db, settings)}


# ---------------------------------------------------------------- audit


@router.get("/audit", response_model=Page[dict[str, Any]])
def audit(db: Db, _: Regulator, settings: SettingsDep,
          actor: Annotated[str | None, Query(max_length=300, pattern=PLAIN_TEXT)] = None,
          action: Annotated[str | None, Query(max_length=100, pattern=PLAIN_TEXT)] = None,
          target: Annotated[str | None, Query(max_length=300, pattern=PLAIN_TEXT)] = None, limit: Limit = None,
          cursor: Cursor = None) -> Page[dict[str, Any]]:
    """The append-only audit log of every write, newest first."""
    after = _after(cursor)
    if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
        raise ApiError(400, "bad_cursor", "cursor is not one this API issued")
    size = _size(limit, settings)
    found = list_audit(db, actor=actor, action=action, target=target, before_id=after, limit=size + 1)
    return _page([e.as_dict() for e in found], size, "id")

