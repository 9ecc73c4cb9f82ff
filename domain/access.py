"""Who asks: a principal's role and the markets it may see (the API's and the console's access rule), and
what a bearer token is: its form, its hash at rest, the scope each role's token must have."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from schemas.common import ID_RE
from schemas.errors import InvalidInput

Role = Literal["regulator", "operator", "producer"]
ROLES: tuple[Role, ...] = ("regulator", "operator", "producer")
#: A token is ``rtk_`` + 43 URL-safe characters (256 random bits); only its SHA-256 is stored.
TOKEN_PREFIX = "rtk_"
DEFAULT_RATE_PER_MINUTE = 600


class TokenRequestError(InvalidInput):
    """A token that cannot be issued as asked (role without its scope, bad market id, ...)."""


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str
    markets: frozenset[str] | None = None  # None: every market
    holder_id: str | None = None

    def sees_market(self, market_id: str | None) -> bool:
        return self.markets is None or (market_id is not None and market_id in self.markets)

    def market_filter(self) -> list[str] | None:
        """Markets to restrict a query to, or None for all."""
        return None if self.markets is None else sorted(self.markets)


ANONYMOUS_REGULATOR = Principal(role="regulator", name="anonymous (auth disabled)")


def hash_token(token: str) -> bytes:
    """What is stored of a token: a token this strong needs no slow hash, and the lookup is one index probe."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_token_id() -> str:
    """The public handle (``tok_...``) shown in lists and used to revoke."""
    return "tok_" + secrets.token_hex(8)


def check_token_request(name: str, role: str, markets: list[str] | None, holder_id: str | None,
                        rate_per_minute: int) -> list[str] | None:
    """The markets a token of ``role`` is scoped to (sorted, or None); TokenRequestError when it cannot be issued."""
    if not name.strip() or len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise TokenRequestError("name must be 1-200 characters without control characters")
    if rate_per_minute < 1:
        raise TokenRequestError("rate_per_minute must be at least 1")
    return token_scope(role, markets, holder_id)


def token_scope(role: str, markets: list[str] | None, holder_id: str | None) -> list[str] | None:
    """An operator's token names its markets; a producer's its holder id; a regulator's neither."""
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
