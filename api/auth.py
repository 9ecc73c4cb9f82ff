"""Bearer tokens: issue (hashed at rest), resolve to a Principal, and rate-limit per token.

A token is ``rtk_`` + 43 URL-safe characters (256 random bits). Only its SHA-256
is stored: a token this strong needs no slow hash, and the lookup is one index
probe. ``token_id`` (``tok_...``) is the public handle shown in lists and used
to revoke. Each token has its own rate (``rate_per_minute``): a token bucket
holding ten seconds' worth of requests, per API process.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from api.errors import ApiError
from domain.access import Principal, Role
from schemas.common import ID_RE
from schemas.errors import InvalidInput
from storage import tokens
from storage.audit import record_audit
from storage.db import Connection

TOKEN_PREFIX = "rtk_"
DEFAULT_RATE_PER_MINUTE = 600
BURST_SECONDS = 10.0
ROLES: tuple[Role, ...] = ("regulator", "operator", "producer")


class TokenRequestError(InvalidInput):
    """A token that cannot be issued as asked (role without its scope, bad market id, ...)."""


@dataclass(frozen=True)
class IssuedToken:
    """The secret is returned once, at issue, and never again."""

    token: str
    record: tokens.TokenRecord


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def principal_of(record: tokens.TokenRecord) -> Principal:
    """A regulator sees every market; an operator its markets; a producer none (only its own chains)."""
    markets: frozenset[str] | None = None
    if record.role == "operator":
        markets = frozenset(record.markets or ())
    elif record.role == "producer":
        markets = frozenset()
    return Principal(
        role=cast(Role, record.role),
        name=f"{record.name} ({record.token_id})",
        markets=markets,
        holder_id=record.holder_id if record.role == "producer" else None,
    )


def resolve_principal(conn: Connection, bearer_token: str) -> Principal | None:
    """The principal of an active token, None for an unknown, revoked or expired one.

    Raises ApiError 429 when the token is over its rate.
    """
    if not bearer_token.startswith(TOKEN_PREFIX) or len(bearer_token) > 200:
        return None
    record = tokens.find_active(conn, hash_token(bearer_token))
    if record is None:
        return None
    wait = LIMITER.acquire(record.token_id, record.rate_per_minute)
    if wait > 0:
        raise ApiError(429, "rate_limited",
                       f"this token is limited to {record.rate_per_minute} requests a minute; retry in {wait:.1f}s",
                       {"retry_after_s": math.ceil(wait)})
    return principal_of(record)


def issue_token(conn: Connection, *, name: str, role: str, markets: list[str] | None = None,
                holder_id: str | None = None, rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
                expires_at: datetime | None = None, actor: str) -> IssuedToken:
    """Create a token in the caller's transaction and audit it; TokenRequestError when the scope is wrong."""
    markets = _check_scope(role, markets, holder_id)
    if not name.strip() or len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise TokenRequestError("name must be 1-200 characters without control characters")
    if rate_per_minute < 1:
        raise TokenRequestError("rate_per_minute must be at least 1")
    token = new_token()
    record = tokens.insert_token(
        conn, token_id="tok_" + secrets.token_hex(8), token_sha256=hash_token(token), name=name.strip(), role=role,
        markets=markets, holder_id=holder_id if role == "producer" else None, rate_per_minute=rate_per_minute,
        expires_at=expires_at, actor=actor,
    )
    record_audit(conn, actor, "token.issue", f"token:{record.token_id}",
                 {"name": record.name, "role": role, "markets": markets, "holder_id": record.holder_id})
    return IssuedToken(token, record)


def revoke_token(conn: Connection, token_id: str, actor: str) -> tokens.TokenRecord | None:
    record = tokens.revoke_token(conn, token_id, actor)
    if record is not None:
        record_audit(conn, actor, "token.revoke", f"token:{token_id}", {"name": record.name})
    return record


def _check_scope(role: str, markets: list[str] | None, holder_id: str | None) -> list[str] | None:
    if role not in ROLES:
        raise TokenRequestError(f"role must be one of {', '.join(ROLES)}")
    if role == "operator":
        if not markets:
            raise TokenRequestError("an operator token needs at least one market")
        bad = [m for m in markets if not ID_RE.fullmatch(m)]
        if bad:
            raise TokenRequestError(f"market ids must be 1-64 chars of [A-Za-z0-9._-]: {bad}")
        return sorted(set(markets))
    if markets:
        raise TokenRequestError(f"a {role} token is not scoped to markets")
    if role == "producer" and (holder_id is None or not ID_RE.fullmatch(holder_id)):
        raise TokenRequestError("a producer token needs its holder id (1-64 chars of [A-Za-z0-9._-])")
    if role != "producer" and holder_id is not None:
        raise TokenRequestError("only a producer token has a holder id")
    return None


class RateLimiter:
    """Token buckets keyed by token id: ``rate/60`` per second, ``BURST_SECONDS`` worth of capacity."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, key: str, rate_per_minute: int) -> float:
        """Take one request; returns 0 when allowed, else the seconds until the next one is."""
        per_second = rate_per_minute / 60.0
        capacity = max(1.0, math.ceil(per_second * BURST_SECONDS))
        now = self._clock()
        with self._lock:
            level, last = self._buckets.get(key, (capacity, now))
            level = min(capacity, level + (now - last) * per_second)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / per_second


LIMITER = RateLimiter()
