"""SQL for the append-only audit log (table ``audit_log``): every write through the API or the admin CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extras import Json, execute_values

from storage.db import Connection
from storage.where import Where


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def record_audit(conn: Connection, principal_name: str, action: str, target: str,
                 details: dict[str, Any] | None = None) -> int:
    """Append one entry inside the caller's transaction (so it commits with the write it records)."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO audit_log (actor, action, target, details) VALUES (%s, %s, %s, %s) RETURNING id",
            (principal_name, action, target, Json(details or {}, dumps=_dumps)),
        )
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def record_audit_many(conn: Connection, principal_name: str,
                      entries: Sequence[tuple[str, str, dict[str, Any] | None]]) -> int:
    """Append one entry per (action, target, details), in one statement inside the caller's transaction."""
    if not entries:
        return 0
    with conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO audit_log (actor, action, target, details) VALUES %s",
            [(principal_name, action, target, Json(details or {}, dumps=_dumps))
             for action, target, details in entries],
            page_size=1000,
        )
    return len(entries)


def list_audit(conn: Connection, *, actor: str | None = None, action: str | None = None,
               target: str | None = None, before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """Entries newest first, keyset-paginated by id."""
    where = Where().equal({"actor": actor, "action": action, "target": target})
    where.after("id", before_id, descending=True)
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, at, actor, action, target, details FROM audit_log {where.sql()} "
                    "ORDER BY id DESC LIMIT %s", (*where.params, limit))
        return [AuditEntry(*row) for row in cur.fetchall()]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
