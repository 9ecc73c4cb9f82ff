"""WHERE clauses every list query shares: equality filters, a market scope, a time range, a keyset position.

Column names are trusted (written in the calling module); values always travel as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
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

    def after(self, column: str, value: object | None, *, descending: bool = False) -> Where:
        """The keyset position of a page: rows past ``value`` in the listing's order (None: the first page)."""
        return self if value is None else self.add(f"{column} {'<' if descending else '>'} %s", value)

    def sql(self) -> str:
        """``WHERE a AND b``, or the empty string."""
        return f"WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


def scoped_where(markets: list[str] | None, equal: Mapping[str, object | None], time_column: str,
                 since: datetime | None, until: datetime | None) -> tuple[list[str], list[Any]]:
    """Clauses and parameters; ``equal`` maps trusted column names to a value or None (no filter)."""
    where = Where().markets(markets).equal(equal).between(time_column, since, until)
    return where.clauses, where.params
