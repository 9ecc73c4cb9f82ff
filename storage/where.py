"""WHERE clauses every list query shares: equality filters, a market scope, a time range, a keyset position.

Column names are trusted (written in the calling module); values always travel as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Where:
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> Where:
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    def equal(self, equal: Mapping[str, object | None]) -> Where:
        """``column = value`` for every value that is not None."""
        for column, value in equal.items():
            if value is not None:
                self.add(f"{column} = %s", value)
        return self

    def markets(self, markets: list[str] | None, column: str = "market_id") -> Where:
        """Only these markets (None: every market)."""
        return self if markets is None else self.add(f"{column} = ANY(%s)", markets)

    def between(self, column: str, since: datetime | None, until: datetime | None) -> Where:
        """``since <= column < until``, each bound when given."""
        if since is not None:
            self.add(f"{column} >= %s", since)
        if until is not None:
            self.add(f"{column} < %s", until)
        return self

    def after(self, column: str | Sequence[str], value: object | Sequence[object] | None, *,
              descending: bool = False, placeholders: Sequence[str] = ()) -> Where:
        """The keyset position of a page: rows past ``value`` in the listing's order (None: the first page).

        ``column`` may name several columns, compared as a row with ``value`` (one value each);
        ``placeholders`` casts them where a value travels as text, e.g. ``("%s", "%s::uuid")``."""
        if value is None:
            return self
        clause, params = keyset(column, value, descending=descending, placeholders=placeholders)
        return self.add(clause, *params)

    def sql(self) -> str:
        """``WHERE a AND b``, or the empty string."""
        return f"WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


def keyset(column: str | Sequence[str], value: object | Sequence[object], *, descending: bool = False,
           placeholders: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """``(a, b) < (%s, %s)`` and its parameters: the rows past ``value`` in ``column``'s order (ascending unless
    ``descending``). A clause list adopts it with ``clauses.append(c); params.extend(p)``."""
    columns = [column] if isinstance(column, str) else list(column)
    values = [value] if isinstance(column, str) else list(value)  # type: ignore[arg-type]
    marks = list(placeholders) or ["%s"] * len(columns)
    if not len(columns) == len(values) == len(marks):
        raise ValueError(f"keyset: {len(columns)} columns, {len(values)} values, {len(marks)} placeholders")
    op = "<" if descending else ">"
    if len(columns) == 1:
        return f"{columns[0]} {op} {marks[0]}", values
    return f"({', '.join(columns)}) {op} ({', '.join(marks)})", values
