"""API bearer tokens (table ``api_tokens``): issue and revoke them, audited, and find the active one of a hash;
only each token's SHA-256 is stored (the rules of a token are in :mod:`domain.access`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.access import DEFAULT_RATE_PER_MINUTE, check_token_request, hash_token, new_token, new_token_id
from storage.audit import record_audit
from storage.db import Connection
from storage.where import Where

_COLUMNS = ("token_id, name, role, markets, holder_id, rate_per_minute, created_at, created_by, expires_at, "
            "revoked_at, revoked_by")


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    name: str
    role: str
    markets: list[str] | None
    holder_id: str | None
    rate_per_minute: int
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class IssuedToken:
    """The secret is returned once, at issue, and never again."""

    token: str
    record: TokenRecord


def issue_token(conn: Connection, *, name: str, role: str, markets: list[str] | None = None,
                holder_id: str | None = None, rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
                expires_at: datetime | None = None, actor: str) -> IssuedToken:
    """Create a token in the caller's transaction and audit it; TokenRequestError when the scope is wrong."""
    markets = check_token_request(name, role, markets, holder_id, rate_per_minute)
    token = new_token()
    record = insert_token(
        conn, token_id=new_token_id(), token_sha256=hash_token(token), name=name.strip(), role=role,
        markets=markets, holder_id=holder_id if role == "producer" else None, rate_per_minute=rate_per_minute,
        expires_at=expires_at, actor=actor,
    )
    record_audit(conn, actor, "token.issue", f"token:{record.token_id}",
                 {"name": record.name, "role": role, "markets": markets, "holder_id": record.holder_id})
    return IssuedToken(token, record)


def revoke_audited(conn: Connection, token_id: str, actor: str) -> TokenRecord | None:
    """Revoke a token and audit it (idempotent); None when there is no such token."""
    record = revoke_token(conn, token_id, actor)
    if record is not None:
        record_audit(conn, actor, "token.revoke", f"token:{token_id}", {"name": record.name})
    return record


def _record(row: tuple[Any, ...]) -> TokenRecord:
    return TokenRecord(*row)


def insert_token(conn: Connection, *, token_id: str, token_sha256: bytes, name: str, role: str,
                 markets: list[str] | None, holder_id: str | None, rate_per_minute: int,
                 expires_at: datetime | None, actor: str) -> TokenRecord:
    with conn.cursor() as cur:
        cur.execute(
            f"""INSERT INTO api_tokens (token_id, token_sha256, name, role, markets, holder_id, rate_per_minute,
                                        expires_at, created_by)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
            (token_id, token_sha256, name, role, markets, holder_id, rate_per_minute, expires_at, actor),
        )
        row = cur.fetchone()
    assert row is not None
    return _record(row)


def find_active(conn: Connection, token_sha256: bytes) -> TokenRecord | None:
    """The token with this hash if it is neither revoked nor expired."""
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT {_COLUMNS} FROM api_tokens
                 WHERE token_sha256 = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())""",
            (token_sha256,),
        )
        row = cur.fetchone()
    return _record(row) if row else None


def revoke_token(conn: Connection, token_id: str, actor: str) -> TokenRecord | None:
    """Revoke (idempotent); None when there is no such token."""
    with conn.cursor() as cur:
        cur.execute(
            f"""UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()), revoked_by = COALESCE(revoked_by, %s)
                 WHERE token_id = %s RETURNING {_COLUMNS}""",
            (actor, token_id),
        )
        row = cur.fetchone()
    return _record(row) if row else None


def revoke_named(conn: Connection, name: str, actor: str) -> list[str]:
    """Revoke every live token called ``name``; their token ids."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE api_tokens SET revoked_at = now(), revoked_by = %s WHERE name = %s AND revoked_at IS NULL"
            " RETURNING token_id", (actor, name),
        )
        return sorted(str(r[0]) for r in cur.fetchall())


def list_tokens(conn: Connection, *, include_revoked: bool = False, after: str | None = None,
                limit: int = 100) -> list[TokenRecord]:
    """Tokens ordered by token_id, keyset-paginated after ``after``."""
    where = Where() if include_revoked else Where().add("revoked_at IS NULL")
    where.after("token_id", after)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM api_tokens {where.sql()} ORDER BY token_id LIMIT %s",
                    (*where.params, limit))
        return [_record(row) for row in cur.fetchall()]
