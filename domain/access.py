"""Who asks: a principal's role and the markets it may see (the API's and the console's access rule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["regulator", "operator", "producer"]


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
