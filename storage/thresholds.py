"""SQL of the strip-lot threshold registry (``threshold_sets``: append-only versions by ``valid_from``)."""

from __future__ import annotations

import json
from typing import Any

from psycopg2 import errors as pg_errors

from domain.judging import RegistryEntry, Scope
from schemas.errors import Conflict
from storage.db import Connection
from storage.where import Where

COLUMNS = ("id", "scope", "analyte", "strip_lot", "valid_from", "params", "created_at", "created_by", "note")
_COLUMNS = ", ".join(COLUMNS)


class ThresholdVersionExists(Conflict):
    """A version with this scope, keys and valid_from is already in the registry."""


def registry_version(conn: Connection) -> tuple[int, int]:
    """(newest id, row count): changes whenever a version is added (rows are never updated)."""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0), count(*) FROM threshold_sets")
        found = cur.fetchone()
    return (int(found[0]), int(found[1])) if found else (0, 0)


def load_registry(conn: Connection) -> list[RegistryEntry]:
    with conn.cursor() as cur:
        cur.execute("SELECT id, scope, analyte, strip_lot, valid_from, params FROM threshold_sets ORDER BY id")
        return [RegistryEntry(r[0], Scope(r[1]), r[2], r[3], r[4], r[5]) for r in cur.fetchall()]


def list_versions(
    conn: Connection, equal: dict[str, str | None], before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Versions newest first; ``equal`` maps scope/analyte/strip_lot to a value or None (no filter)."""
    where = Where().equal({c: equal.get(c) for c in ("scope", "analyte", "strip_lot")})
    where.after("id", before_id, descending=True)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM threshold_sets {where.sql()} ORDER BY id DESC LIMIT %s", [*where.params, limit],
        )
        return [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]


def add_version(
    conn: Connection, scope: str, analyte: str | None, strip_lot: str | None, valid_from: Any,
    params: dict[str, Any], created_by: str, note: str | None,
) -> dict[str, Any]:
    """Insert one version; :class:`ThresholdVersionExists` when scope, keys and valid_from exist (the
    transaction is then aborted: the caller rolls back)."""
    with conn.cursor() as cur:
        try:
            cur.execute(
                "INSERT INTO threshold_sets (scope, analyte, strip_lot, valid_from, params, created_by, note) "
                f"VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s) RETURNING {_COLUMNS}",
                (scope, analyte, strip_lot, valid_from, json.dumps(params, allow_nan=False), created_by, note),
            )
        except pg_errors.UniqueViolation as exc:
            raise ThresholdVersionExists("a version with this scope, keys and valid_from exists") from exc
        found = cur.fetchone()
    assert found is not None
    return dict(zip(COLUMNS, found, strict=True))
