"""Dead letters: every message the system could not take, with its reason and raw bytes."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import Db, Principal, SettingsDep, require_role
from api.errors import ApiError
from api.pagination import Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/deadletters", tags=["deadletters"])


@router.get("", response_model=Page[dict[str, Any]])
def deadletters(
    db: Db,
    settings: SettingsDep,
    _: Annotated[Principal, Depends(require_role("regulator"))],
    code: Annotated[str | None, Query(max_length=64)] = None,
    source: Annotated[str | None, Query(pattern="^(mqtt|http|kafka)$")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[dict[str, Any]]:
    """Dead letters with their reasons, newest first."""
    size = min(limit or settings.api_page_default, settings.api_page_max)
    clauses: list[str] = []
    params: list[object] = []
    if code:
        clauses.append("code = %s")
        params.append(code)
    if source:
        clauses.append("source = %s")
        params.append(source)
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        if not isinstance(last_id, int):
            raise ApiError(400, "bad_cursor", "cursor is not one this API issued")
        clauses.append("id < %s")
        params.append(last_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with db.cursor() as cur:
        cur.execute(
            "SELECT id, received_at, source, source_topic, code, reason, raw, raw_text FROM deadletters "
            f"{where} ORDER BY id DESC LIMIT %s",
            [*params, size + 1],
        )
        rows = cur.fetchall()
    items = [
        {"id": r[0], "received_at": r[1], "source": r[2], "source_topic": r[3], "code": r[4], "reason": r[5],
         "raw_b64": base64.b64encode(bytes(r[6])).decode(), "raw_text": r[7]}
        for r in rows[:size]
    ]
    next_cursor = encode_cursor([items[-1]["id"]]) if len(rows) > size else None
    return Page(items=items, next_cursor=next_cursor)
