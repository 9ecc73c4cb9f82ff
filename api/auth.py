"""Bearer tokens at the API's door: resolve one to a Principal, and rate-limit per token.

What a token is (its form, hash and scope rules) lives in :mod:`domain.access`; issuing and
revoking in :mod:`storage.tokens`. Each token has its own rate (``rate_per_minute``): a token
bucket holding ten seconds' worth of requests, per API process.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import cast

from api.errors import ApiError
from domain.access import TOKEN_PREFIX, Principal, Role, hash_token
from storage import tokens
from storage.db import Connection

BURST_SECONDS = 10.0
__all__ = ["LIMITER", "RateLimiter", "principal_of", "resolve_principal"]


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
