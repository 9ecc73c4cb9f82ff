"""Which failures a judged reading raises, and how they are keyed: pure rules with typed values.

* A positive, suspicious or invalid strip is one failure per reading (each
  strip is handled on its own: its sale stops, it is retested).  When the
  device's verdict disagrees, the same failure says so (``device_result``,
  ``verdict_mismatch`` in its details): one failure, not two.
* A reader fault is one open failure per **cause**: ``verdict_mismatch`` per
  reader (raised when the server judged the strip negative, so no strip
  failure covers it) and ``cutoff_mismatch`` per reader and reported cut-off
  value.  Later readings with the same cause add to the open failure (count,
  first and last seen, the readings); once it is closed the cause recurring
  opens a new one (its dedup key names the reading that opened it).
* Failure ids are UUIDv5 of the dedup key: stable across redeliveries and replays.
* Deadlines come from one settings-backed source, :func:`deadlines_from`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain import workflow
from domain.workflow import Kind

FAILURE_NAMESPACE = uuid.UUID("6f1f8a52-3c57-4d0e-9a51-8f1e2b7c0d33")
#: Readings listed on a per-cause failure's page, newest first.
NEWEST_READINGS = 20

_STRIP_KINDS = {"positive": Kind.POSITIVE, "suspicious": Kind.SUSPICIOUS, "invalid": Kind.INVALID}


def failure_id_for(dedup_key: str) -> uuid.UUID:
    """The same failure always gets the same id (stable across redeliveries and replays)."""
    return uuid.uuid5(FAILURE_NAMESPACE, dedup_key)


class DeadlineSettings(Protocol):
    objection_window_h: float
    posting_hour_wholesale: int
    posting_hour_farmers: int
    deadline_timezone: str


def deadlines_from(settings: DeadlineSettings) -> workflow.Deadlines:
    """The workflow's deadlines from the settings (``RT_OBJECTION_WINDOW_H`` ...): one source for the
    flagger (due dates, overdue sweeps) and the API (allowed actions, objection deadline)."""
    return workflow.Deadlines(
        objection_window=timedelta(hours=settings.objection_window_h),
        posting_hour_wholesale=settings.posting_hour_wholesale,
        posting_hour_farmers=settings.posting_hour_farmers,
        timezone=settings.deadline_timezone,
    )


@dataclass(frozen=True)
class Judged:
    """What the failure rules need of one newly judged reading."""

    reading_id: uuid.UUID
    measured_at: datetime
    market_id: str
    station_id: str
    device_id: str
    analyte: str
    commodity: str
    commodity_category: str | None
    region_code: str
    strip_lot: str
    server_result: str
    device_result: str | None
    rule: str
    reason: str
    ratio: float | None
    device_cutoff: float | None
    verdict_mismatch: bool
    cutoff_mismatch: bool
    thresholds: Mapping[str, Any]
    sample_id: str | None = None
    vendor_id: str | None = None
    certificate_no: str | None = None
    lot_code: str | None = None


@dataclass(frozen=True)
class NewFailure:
    """A failure to raise: its row (without workflow columns), its opening events, and for a
    per-cause failure its cause key and the readings it covers."""

    row: dict[str, Any]
    events: list[workflow.Event]
    cause_key: str | None = None
    readings: tuple[tuple[uuid.UUID, datetime], ...] = ()

    @property
    def failure_id(self) -> uuid.UUID:
        return uuid.UUID(str(self.row["failure_id"]))


def cause_of(kind: Kind, j: Judged) -> str | None:
    """The cause key of a reader-fault failure, None for a per-strip one."""
    if kind is Kind.VERDICT_MISMATCH:
        return f"verdict_mismatch:{j.device_id}"
    if kind is Kind.CUTOFF_MISMATCH:
        return f"cutoff_mismatch:{j.device_id}:{j.device_cutoff:g}"
    return None


def raises_any(server_result: str, verdict_mismatch: bool, cutoff_mismatch: bool,
               device_cutoff: float | None) -> bool:
    """Whether a verdict raises any failure (:func:`kinds_for` not empty), asked before a
    :class:`Judged` is built: most readings are clean negatives and raise nothing."""
    return server_result in _STRIP_KINDS or verdict_mismatch or (cutoff_mismatch and device_cutoff is not None)


def kinds_for(j: Judged) -> list[Kind]:
    """The failure kinds one judged reading raises (see the module docstring)."""
    out = []
    strip = _STRIP_KINDS.get(j.server_result)
    if strip is not None:
        out.append(strip)
    elif j.verdict_mismatch:
        out.append(Kind.VERDICT_MISMATCH)
    if j.cutoff_mismatch and j.device_cutoff is not None:
        out.append(Kind.CUTOFF_MISMATCH)
    return out


def summary(kind: Kind, j: Judged) -> str:
    where = f"{j.commodity} / {j.analyte} at {j.market_id}/{j.station_id}"
    if kind is Kind.VERDICT_MISMATCH:
        return f"device {j.device_id} said {j.device_result}, server judged {j.server_result}: {where}"
    if kind is Kind.CUTOFF_MISMATCH:
        return (
            f"device {j.device_id} cut-off {j.device_cutoff:g} differs from the registry's "
            f"r_pos {float(j.thresholds.get('r_pos', 0.0)):g}: {where}"
        )
    disagrees = f"; the device said {j.device_result}" if j.verdict_mismatch else ""
    return f"{kind.value} strip: {where} ({j.reason}){disagrees}"


def reading_failures(j: Judged, now: datetime) -> list[NewFailure]:
    """The failures one new verdict raises (before folding causes together)."""
    out = []
    for kind in kinds_for(j):
        cause = cause_of(kind, j)
        key = f"{cause or kind.value}:{j.reading_id}"
        row = {
            "failure_id": failure_id_for(key),
            "dedup_key": key,
            "kind": kind.value,
            "workflow": workflow.workflow_of(kind).value,
            "raised_at": now,
            "summary": summary(kind, j),
            "details": {
                "server_result": j.server_result,
                "device_result": j.device_result,
                "verdict_mismatch": j.verdict_mismatch,
                "rule": j.rule,
                "reason": j.reason,
                "ratio": j.ratio,
                "device_cutoff": j.device_cutoff,
                "thresholds": dict(j.thresholds),
            },
            "reading_id": j.reading_id,
            "measured_at": j.measured_at,
            "market_id": j.market_id,
            "station_id": j.station_id,
            "device_id": j.device_id,
            "analyte": j.analyte,
            "commodity": j.commodity,
            "commodity_category": j.commodity_category,
            "region_code": j.region_code,
            "strip_lot": j.strip_lot,
            "sample_id": j.sample_id,
            "vendor_id": j.vendor_id,
            "certificate_no": j.certificate_no,
            "lot_code": j.lot_code,
            "subject": j.device_id,
            "first_seen": j.measured_at,
            "last_seen": j.measured_at,
            "occurrences": 1,
        }
        out.append(NewFailure(row, workflow.auto_events(kind, now), cause, ((j.reading_id, j.measured_at),)))
    return out


def fold_causes(failures: Iterable[NewFailure]) -> list[NewFailure]:
    """One failure per cause key in a batch (per-strip failures pass through unchanged): the first
    reading's row, counting every reading of the cause, first and last seen over all of them."""
    out: list[NewFailure] = []
    by_cause: dict[str, int] = {}
    for f in failures:
        if f.cause_key is None:
            out.append(f)
            continue
        at = by_cause.get(f.cause_key)
        if at is None:
            by_cause[f.cause_key] = len(out)
            out.append(f)
            continue
        held = out[at]
        row = {
            **held.row,
            "occurrences": held.row["occurrences"] + f.row["occurrences"],
            "first_seen": min(held.row["first_seen"], f.row["first_seen"]),
            "last_seen": max(held.row["last_seen"], f.row["last_seen"]),
        }
        out[at] = NewFailure(row, held.events, held.cause_key, held.readings + f.readings)
    return out


@dataclass(frozen=True)
class SubjectFailure:
    """A failure about a device, a strip lot or another failure rather than one reading."""

    kind: Kind
    dedup_key: str
    subject: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def raise_at(self, now: datetime, **columns: Any) -> NewFailure:
        row = {
            "failure_id": failure_id_for(self.dedup_key),
            "dedup_key": self.dedup_key,
            "kind": self.kind.value,
            "workflow": workflow.workflow_of(self.kind).value,
            "raised_at": now,
            "summary": self.summary,
            "details": self.details,
            "subject": self.subject,
            **columns,
        }
        return NewFailure(row, workflow.auto_events(self.kind, now))


def share(part: int, whole: int) -> float | None:
    """``part / whole`` to six places; None when there is nothing to divide."""
    return round(part / whole, 6) if whole else None


def quality_figures(tests: int, invalid: int, false_positives: int, confirmed: int) -> dict[str, float | None]:
    """The figures a regulator takes to a kit maker, per reader or strip lot: the invalid rate
    (invalid strips / tests) and the false-positive rate (lab-negative releases / screen positives the
    lab settled, i.e. false positives + confirmed)."""
    return {
        "invalid_rate": share(invalid, tests),
        "false_positive_rate": share(false_positives, false_positives + confirmed),
    }
