"""Types shared by every rapidtrace message: identifiers, times, numbers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, Strict, StringConstraints, ValidationError

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

#: 1-64 chars of ``[A-Za-z0-9._-]`` (SPEC.md "Identifiers").
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def _parse_aware(value: object) -> object:
    """Accept RFC 3339 strings and aware datetimes only; a naive time is an error."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not _RFC3339_RE.match(text):
            raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-28T08:15:03+08:00")
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError as exc:
            raise ValueError(f"not a valid date-time: {exc}") from exc
    else:
        raise ValueError("must be an RFC 3339 date-time string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("date-time must carry an offset (e.g. +08:00 or Z)")
    return parsed


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: An RFC 3339 date-time with an offset, normalised to UTC.
AwareDatetime = Annotated[datetime, BeforeValidator(_parse_aware), AfterValidator(_to_utc)]


#: A JSON number (an integer or a float; not a boolean, not a string), finite: NaN, Infinity and
#: numbers beyond double range are errors.  Validated by pydantic-core itself: two Python validators
#: per number cost a fifth of a reading's validation.
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    """RFC 3339 text of an aware datetime, in UTC with an explicit offset."""
    return value.astimezone(UTC).isoformat()


def describe_validation_error(exc: ValidationError, limit: int = 10, what: str = "(message)") -> str:
    """A dead-letter reason: each failing field's path (``what`` for the whole) and message, ``; ``-separated."""
    parts = []
    for err in exc.errors()[:limit]:
        path = ".".join(str(p) for p in err["loc"]) or what
        parts.append(f"{path}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
