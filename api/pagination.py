"""Opaque keyset cursors and the page shape every list endpoint returns."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel

from api.errors import ApiError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", "cursor is not one this API issued") from None
    if not isinstance(values, list) or len(values) != n:
        raise ApiError(400, "bad_cursor", "cursor is not one this API issued")
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
        raise ApiError(400, "bad_cursor", "cursor is not one this API issued") from None
