"""The failure routes' answers, typed: a failure as listed, its history, its page (``GET /v1/failures/{id}``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.routes.readings import ReadingDetail
from domain import workflow
from domain.workflow import Kind, Outcome, State, Workflow


class FailureOut(BaseModel):
    """A failure as listed: the failures table's columns (storage.failures.LIST_FIELDS) and ``overdue``."""

    failure_id: str
    kind: Kind
    workflow: Workflow
    raised_at: datetime
    summary: str
    reading_id: str | None
    measured_at: datetime | None
    market_id: str | None
    station_id: str | None
    device_id: str | None
    analyte: str | None
    commodity: str | None
    commodity_category: str | None
    region_code: str
    strip_lot: str | None
    sample_id: str | None
    vendor_id: str | None
    certificate_no: str | None
    lot_code: str | None
    subject: str | None = Field(description="what a failure not about one reading is about: a device, a strip lot")
    parent_failure_id: str | None
    wholesale: bool
    state: State
    state_since: datetime
    due_at: datetime | None
    closed_at: datetime | None
    cause_key: str | None = Field(description="a reader fault's cause; null for a per-strip failure")
    occurrences: int
    first_seen: datetime | None
    last_seen: datetime | None
    outcome: Outcome | None
    overdue: bool = Field(description="open and past its step's deadline")


@dataclass(frozen=True)
class FailureEvent(workflow.Event):
    """One entry of a failure's history, oldest first: the workflow's event and ``seq``, its id in the live stream."""

    seq: int = 0


class CauseReading(BaseModel):
    """One of the newest readings a per-cause failure covers, with how the server judged it."""

    reading_id: str
    measured_at: datetime
    server_result: str | None
    device_result: str | None
    device_cutoff: float | None
    ratio: float | None


class VerdictOut(BaseModel):
    """The server's verdict on the failure's reading, with the thresholds it was judged by."""

    device_result: str | None
    server_result: str
    rule: str
    reason: str
    ratio: float | None
    concentration: float | None
    device_cutoff: float | None
    verdict_mismatch: bool
    cutoff_mismatch: bool
    thresholds_digest: str
    thresholds: dict[str, Any] | None
    judged_at: datetime


class FailureDetail(FailureOut):
    """One failure's page: its reading, both verdicts, the thresholds used, its newest readings and history."""

    details: dict[str, Any]
    objection_deadline: datetime | None
    allowed_actions: list[str] = Field(description="what this token's role may do now")
    reading: ReadingDetail | None
    verdict: VerdictOut | None
    thresholds_used: dict[str, Any] | None
    readings: list[CauseReading]
    history: list[FailureEvent]
