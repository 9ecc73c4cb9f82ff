"""Administration for regulators: API tokens, reader MQTT credentials, and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Db, Principal, SettingsDep, require_role
from api.errors import ApiError
from api.pagination import Page, cursor_value, page_of, page_size
from domain.access import DEFAULT_RATE_PER_MINUTE
from schemas.common import AwareDatetime, Identifier
from storage import devices, tokens
from storage.audit import AuditEntry, list_audit
from storage.device_credentials import (
    FilesSync,
    IssuedCredentials,
    add_device,
    revoke_device,
    rotate_device,
    sync_mosquitto_files,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Regulator = Annotated[Principal, Depends(require_role("regulator"))]
Limit = Annotated[int | None, Query(ge=1)]
#: Free text compared in SQL: no control characters (PostgreSQL text cannot hold NUL).
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"
#: The same, with at least one character that is not white space.
NAME_TEXT = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
Cursor = Annotated[str | None, Query(max_length=500)]


class _TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=NAME_TEXT, description="who holds the token")
    rate_per_minute: int = Field(DEFAULT_RATE_PER_MINUTE, ge=1, le=1_000_000)
    expires_at: AwareDatetime | None = None


class RegulatorTokenRequest(_TokenRequest):
    """A regulator sees every market."""

    role: Literal["regulator"]


class OperatorTokenRequest(_TokenRequest):
    """An operator sees its markets only."""

    role: Literal["operator"]
    markets: list[Identifier] = Field(min_length=1, max_length=1000, description="the markets it may see")


class ProducerTokenRequest(_TokenRequest):
    """A producer submits and traces its own chains, as one certificate holder."""

    role: Literal["producer"]
    holder_id: Identifier = Field(description="the certificate holder id it submits as")


#: The role decides which scope fields a token takes; the schema says so (``oneOf`` on ``role``).
TokenRequest = Annotated[RegulatorTokenRequest | OperatorTokenRequest | ProducerTokenRequest,
                         Field(discriminator="role")]


class DeviceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    market_id: Identifier
    station_id: Identifier
    device_id: Identifier


@dataclass(frozen=True)
class IssuedToken(tokens.TokenRecord):
    token: str  # the secret: in this answer only, stored hashed


@dataclass(frozen=True)
class RevokedAccount(devices.AccountRecord):
    mosquitto_files: FilesSync  # what became of Mosquitto's password and ACL files


@dataclass(frozen=True)
class Credentials(RevokedAccount):
    password: str  # the MQTT password: in this answer only, stored hashed
    topic: str  # the one topic the reader may publish to


# ---------------------------------------------------------------- tokens


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, db: Db, principal: Regulator) -> IssuedToken:
    """Issue an API token; the secret is in this answer only."""
    markets = body.markets if isinstance(body, OperatorTokenRequest) else None
    holder_id = body.holder_id if isinstance(body, ProducerTokenRequest) else None
    issued = tokens.issue_token(db, name=body.name, role=body.role, markets=markets, holder_id=holder_id,
                         rate_per_minute=body.rate_per_minute, expires_at=body.expires_at, actor=principal.name)
    db.commit()
    return IssuedToken(**issued.record.as_dict(), token=issued.token)


@router.get("/tokens")
def token_list(db: Db, _: Regulator, settings: SettingsDep, include_revoked: bool = False, limit: Limit = None,
               cursor: Cursor = None) -> Page[tokens.TokenRecord]:
    """API tokens (never their secrets), by token id."""
    size = page_size(limit, settings)
    found = tokens.list_tokens(db, include_revoked=include_revoked, after=cursor_value(cursor, str), limit=size + 1)
    return page_of(found, size, lambda t: [t.token_id])


@router.post("/tokens/{token_id}/revoke")
def token_revoke(token_id: Annotated[str, Path(max_length=64)], db: Db, principal: Regulator) -> tokens.TokenRecord:
    """Revoke a token at once (idempotent)."""
    record = tokens.revoke_audited(db, token_id, principal.name)
    if record is None:
        raise ApiError(404, "not_found", f"no token {token_id}")
    db.commit()
    return record


# ---------------------------------------------------------------- devices


def _credentials(issued: IssuedCredentials, files: FilesSync) -> Credentials:
    return Credentials(**issued.account.as_dict(), mosquitto_files=files, password=issued.password,
                       topic=issued.topic)


@router.post("/devices", status_code=201)
def device_add(body: DeviceRequest, db: Db, principal: Regulator, settings: SettingsDep) -> Credentials:
    """Register a reader: its MQTT username and password (shown only here) and the one topic it may publish to."""
    issued = add_device(db, body.market_id, body.station_id, body.device_id, principal.name)  # taken: 409
    db.commit()
    return _credentials(issued, sync_mosquitto_files(db, settings))


@router.get("/devices")
def device_list(db: Db, _: Regulator, settings: SettingsDep, market_id: Identifier | None = None,
                include_revoked: bool = False, limit: Limit = None,
                cursor: Cursor = None) -> Page[devices.AccountRecord]:
    """Registered readers and their credential state (never a password or hash), by device id."""
    size = page_size(limit, settings)
    found = devices.list_accounts(db, markets=[market_id] if market_id else None, include_revoked=include_revoked,
                                  after=cursor_value(cursor, str), limit=size + 1)
    return page_of(found, size, lambda a: [a.username])


@router.post("/devices/{device_id}/rotate")
def device_rotate(device_id: Identifier, db: Db, principal: Regulator, settings: SettingsDep) -> Credentials:
    """Give an active reader a new password (shown only here); the old one stops working."""
    issued = rotate_device(db, device_id, principal.name)
    if issued is None:
        raise ApiError(404, "not_found", f"no active device {device_id}")
    db.commit()
    return _credentials(issued, sync_mosquitto_files(db, settings))


@router.post("/devices/{device_id}/revoke")
def device_revoke(device_id: Identifier, db: Db, principal: Regulator, settings: SettingsDep) -> RevokedAccount:
    """Revoke a reader's MQTT account; the broker refuses it after its reload."""
    account = revoke_device(db, device_id, principal.name)
    if account is None:
        raise ApiError(404, "not_found", f"no device {device_id}")
    db.commit()
    return RevokedAccount(**account.as_dict(), mosquitto_files=sync_mosquitto_files(db, settings))


# ---------------------------------------------------------------- audit


@router.get("/audit")
def audit(db: Db, _: Regulator, settings: SettingsDep,
          actor: Annotated[str | None, Query(max_length=300, pattern=PLAIN_TEXT)] = None,
          action: Annotated[str | None, Query(max_length=100, pattern=PLAIN_TEXT)] = None,
          target: Annotated[str | None, Query(max_length=300, pattern=PLAIN_TEXT)] = None, limit: Limit = None,
          cursor: Cursor = None) -> Page[AuditEntry]:
    """The append-only audit log of every write, newest first."""
    size = page_size(limit, settings)
    found = list_audit(db, actor=actor, action=action, target=target, before_id=cursor_value(cursor, int),
                       limit=size + 1)
    return page_of(found, size, lambda e: [e.id])
