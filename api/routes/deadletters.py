"""Dead letters: every message the system could not take, with its reason and raw bytes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.deps import Db, Principal, SettingsDep, require_role
from api.pagination import Page, cursor_value, page_of, page_size
from storage.deadletters import list_deadletters

router = APIRouter(prefix="/v1/deadletters", tags=["deadletters"])


class DeadLetterOut(BaseModel):
    id: int
    received_at: datetime
    source: Literal["mqtt", "http", "kafka"]
    source_topic: str
    code: str
    reason: str
    raw_b64: str
    raw_text: str | None


@router.get("", response_model=Page[DeadLetterOut])
def deadletters(
    db: Db,
    settings: SettingsDep,
    _: Annotated[Principal, Depends(require_role("regulator"))],
    code: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
    source: Literal["mqtt", "http", "kafka"] | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[DeadLetterOut]:
    """Dead letters with their reasons, newest first."""
    size = page_size(limit, settings)
    found = list_deadletters(db, code=code, source=source, before_id=cursor_value(cursor, int), limit=size + 1)
    page = page_of(found, size, lambda d: [d.id])
    return Page(items=[DeadLetterOut(**d.as_dict()) for d in page.items], next_cursor=page.next_cursor)
