"""Opaque keyset cursors, the page size, and the page shape every list endpoint returns."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel

from api.errors import ApiError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


BAD_CURSOR = "cursor is not one this API issued"


def page_size(limit: int | None, default: int, maximum: int) -> int:
    """The rows of one page: ``limit``, else the default, never above the maximum."""
    return min(limit or default, maximum)


def page_of(rows: Sequence[T], size: int, key: Callable[[T], list[Any]]) -> Page[T]:
    """A page of the first ``size`` rows of ``size + 1`` fetched; the cursor (``key`` of the last row) when more."""
    if len(rows) > size:
        return Page(items=list(rows[:size]), next_cursor=encode_cursor(key(rows[size - 1])))
    return Page(items=list(rows))


def cursor_value(cursor: str | None, kind: type[Any]) -> Any:
    """The one value of a single-key cursor, checked to be a ``kind``; None without a cursor, 400 when forged."""
    if cursor is None:
        return None
    (value,) = decode_cursor(cursor, 1)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, "bad_cursor", BAD_CURSOR)
    return value


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", BAD_CURSOR) from None
    if not isinstance(values, list) or len(values) != n:
        raise ApiError(400, "bad_cursor", BAD_CURSOR)
    return values


def encode_time_cursor(at: datetime, ident: object) -> str:
    """A keyset cursor on (time, id), newest first."""
    return encode_cursor([at.isoformat(), str(ident)])


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) of a cursor from :func:`encode_time_cursor`; 400 for anything else."""
    if cursor is None:
        return None
    at, ident = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), str(UUID(ident))
    except (TypeError, ValueError):
        raise ApiError(400, "bad_cursor", BAD_CURSOR) from None
