"""WHERE clauses every list query shares (they live in storage/where.py, beside the SQL)."""

from __future__ import annotations

from storage.where import Where, scoped_where

__all__ = ["Where", "scoped_where"]
