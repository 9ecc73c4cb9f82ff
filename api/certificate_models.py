"""Response models of the certificate routes (the OpenAPI's description of what they answer)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SubmitterOut(BaseModel):
    role: str
    name: str
    route: str
    holder_id: str | None = None
    markets: list[str] | None = None


class HeldRecord(BaseModel):
    """A record waiting for a parent (or the record it corrects) to arrive."""

    certificate_no: str
    kind: str
    holder_id: str
    market_id: str | None
    waits_for: list[str] = Field(description="numbers it waits for")
    waits_on_held: list[str] = Field(description="of those, the ones held themselves (the rest have not arrived)")
    held_at: datetime
    age_s: float = Field(description="seconds since it was held")
    submitter: SubmitterOut | None = None
