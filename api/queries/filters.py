"""WHERE clauses every list query shares: the principal's market scope, equality filters, a time range."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def scoped_where(
    markets: list[str] | None,
    equal: Mapping[str, object | None],
    time_column: str,
    since: datetime | None,
    until: datetime | None,
) -> tuple[list[str], list[Any]]:
    """Clauses and parameters; ``equal`` maps trusted column names to a value or None (no filter)."""
    clauses: list[str] = []
    params: list[Any] = []
    if markets is not None:
        clauses.append("market_id = ANY(%s)")
        params.append(markets)
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if since is not None:
        clauses.append(f"{time_column} >= %s")
        params.append(since)
    if until is not None:
        clauses.append(f"{time_column} < %s")
        params.append(until)
    return clauses, params
