"""Response models of the certificate routes (the OpenAPI's description of what they answer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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




# --- submission -----------------------------------------------------------------------------


class QueuedItem(BaseModel):
    certificate_no: str
    location: str = Field(description="where the stored (or held) record will be")


class Queued(QueuedItem):
    """One record accepted for the chain consumer."""

    status: Literal["queued"]


class QueuedMany(BaseModel):
    status: Literal["queued"]
    count: int
    items: list[QueuedItem]


# --- reading --------------------------------------------------------------------------------


class CertificateDetail(BaseModel):
    """A stored record with its digest, or a held one with what it waits for."""

    status: Literal["accepted", "held"]
    certificate_no: str
    record: dict[str, Any] = Field(description="the canonical record (parents outside your scope unnamed)")
    digest: str | None = None
    depth: int | None = None
    stored_at: datetime | None = None
    superseded_by: str | None = Field(None, description="the correcting record, when in your scope")
    superseded: bool = False
    children: list[str] = Field(default_factory=list, description="child records in your scope (at most 100)")
    children_count: int = 0
    children_outside_scope: int = 0
    parents_outside_scope: int = 0
    waits_for: list[str] | None = None
    held_at: datetime | None = None
    submitter: SubmitterOut | None = Field(None, description="who submitted it, through which route (regulators)")


class Amount(BaseModel):
    value: float
    unit: str


class Product(BaseModel):
    name: str
    category: str


class HolderRef(BaseModel):
    id: str
    role: str


class LocationRef(BaseModel):
    market_id: str | None
    stall_id: str | None


class Node(BaseModel):
    certificate_no: str
    kind: str
    hops: int | None
    side: str | None
    depth: int
    issued_at: datetime
    lot_code: str | None
    product: Product
    quantity: Amount
    holder: HolderRef
    location: LocationRef
    digest: str
    supersedes: str | None
    superseded_by: str | None
    superseded: bool


class Edge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    quantity: Amount


class TraceOut(BaseModel):
    certificate_no: str
    direction: Literal["up", "down", "both"]
    max_depth: int
    nodes: list[Node]
    edges: list[Edge]
    truncated: bool


class Alteration(BaseModel):
    certificate_no: str | None = Field(description="null when the record is outside your scope")
    hops: int
    problem: str


class Verification(BaseModel):
    certificate_no: str
    ok: bool
    checked: int
    first_altered: str | None
    alterations: list[Alteration]


# --- recall scope ---------------------------------------------------------------------------


class RapidTestOut(BaseModel):
    reading_id: str
    measured_at: datetime
    certificate_no: str | None = Field(description="null when matched by lot code to a lot outside your scope")
    analyte: str
    method: str
    verdict: str | None
    market_id: str | None
    station_id: str | None
    device_id: str | None
    c_line: float | None
    t_line: float | None
    inhibition_pct: float | None
    device_result: str | None
    failed: bool


class RecallLot(Node):
    tests: list[RapidTestOut]


class HolderTotal(BaseModel):
    holder_id: str
    role: str
    lots: list[str]
    quantity: dict[str, float] = Field(description="per unit, what reached the holder from elsewhere")


class StallTotal(BaseModel):
    market_id: str
    stall_id: str
    lots: list[str]
    quantity: dict[str, float]


class ChainGraph(BaseModel):
    nodes: list[Node]
    edges: list[Edge]


class RecallScope(BaseModel):
    sample: dict[str, Any]
    start: list[str]
    origins: list[str]
    chain_up: ChainGraph
    lots: list[RecallLot]
    edges: list[Edge]
    holders: list[HolderTotal]
    stalls: list[StallTotal]
    tests: list[RapidTestOut]
    truncated: bool


class FailureRecallScope(RecallScope):
    failure_id: str
