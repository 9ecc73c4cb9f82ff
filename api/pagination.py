"""Opaque keyset cursors, the page size, and the page shape every list endpoint returns."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, overload
from uuid import UUID

from pydantic import BaseModel

from api.errors import ApiError

T = TypeVar("T")
U = TypeVar("U")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


BAD_CURSOR = "cursor is not one this API issued"


class PageSettings(Protocol):
    api_page_default: int
    api_page_max: int


def page_size(limit: int | None, settings: PageSettings) -> int:
    """The rows of one page: ``limit``, else the default, never above the maximum (``RT_API_PAGE_*``)."""
    return min(limit or settings.api_page_default, settings.api_page_max)


@overload
def page_of(rows: Sequence[T], size: int, key: Callable[[T], list[Any]]) -> Page[T]: ...
@overload
def page_of(rows: Sequence[T], size: int, key: Callable[[T], list[Any]], item: Callable[[T], U]) -> Page[U]: ...
def page_of(rows: Sequence[Any], size: int, key: Callable[[Any], list[Any]],
            item: Callable[[Any], Any] | None = None) -> Page[Any]:
    """A page of the first ``size`` rows of ``size + 1`` fetched, each as ``item`` makes it; the cursor (``key``
    of the last row kept) when there are more. ``next_cursor`` is always set, so an answer that leaves unset
    fields out still has it."""
    kept = list(rows[:size])
    items = [item(r) for r in kept] if item is not None else kept
    return Page(items=items, next_cursor=encode_cursor(key(kept[-1])) if len(rows) > size else None)


def time_key(at: datetime, ident: object) -> list[Any]:
    """The cursor values of a keyset on (time, id): :func:`decode_time_cursor` reads them back."""
    return [at.isoformat(), str(ident)]


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


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) of a cursor made from :func:`time_key`; 400 for anything else."""
    if cursor is None:
        return None
    at, ident = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), str(UUID(ident))
    except (TypeError, ValueError):
        raise ApiError(400, "bad_cursor", BAD_CURSOR) from None
