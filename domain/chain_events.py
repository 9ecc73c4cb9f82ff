"""A chain of certificate records as supply-chain events (what EPCIS and FSMA exports share).

Pure: no I/O.  One event per issuing, two per hand-off (shipping by the
parent's holder, receiving by the new holder), one per split or merge.
A hand-off passes the same lot on, so its lot is its parent's lot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.certificate import CertificateRecord, Holder, Kind, Quantity


class Step(StrEnum):
    ISSUE = "issue"
    SHIP = "ship"
    RECEIVE = "receive"
    TRANSFORM = "transform"


@dataclass(frozen=True)
class Lot:
    """A physical lot: identified by the record that created it (origin, split or merge)."""

    key: str
    lot_code: str | None


@dataclass(frozen=True)
class Input:
    parent_no: str
    lot: Lot
    quantity: Quantity
    holder: Holder | None  # None when the parent is outside the exported chain


@dataclass(frozen=True)
class ChainEvent:
    step: Step
    record: CertificateRecord
    time: datetime
    lot: Lot
    quantity: Quantity
    inputs: tuple[Input, ...] = ()

    @property
    def certificate_no(self) -> str:
        return self.record.certificate_no


@dataclass(frozen=True)
class RapidTest:
    """A reading linked to a lot in the chain."""

    reading_id: str
    measured_at: datetime
    certificate_no: str
    analyte: str
    method: str
    verdict: str | None
    market_id: str | None = None
    station_id: str | None = None
    device_id: str | None = None
    c_line: float | None = None
    t_line: float | None = None
    inhibition_pct: float | None = None
    device_result: str | None = None  # ``verdict`` is the server's when it has judged the strip

    @property
    def failed(self) -> bool:
        return self.verdict in ("positive", "suspicious")


def lot_of(number: str, records: Mapping[str, CertificateRecord]) -> Lot:
    """The lot a record covers: a hand-off's lot is its parent's (when known)."""
    rec = records[number]
    seen = {number}
    while rec.kind is Kind.HANDOFF and rec.parents and rec.parents[0].certificate_no in records:
        parent_no = rec.parents[0].certificate_no
        if parent_no in seen:
            break
        seen.add(parent_no)
        rec = records[parent_no]
    return Lot(key=rec.certificate_no, lot_code=rec.lot_code or records[number].lot_code)


def chain_events(records: Mapping[str, CertificateRecord]) -> list[ChainEvent]:
    """Events of every record, ordered by time, then certificate number, then step."""
    events: list[ChainEvent] = []
    for rec in records.values():
        events.extend(_record_events(rec, records))
    order = list(Step)
    return sorted(events, key=lambda e: (e.time, e.certificate_no, order.index(e.step)))


def _inputs(rec: CertificateRecord, records: Mapping[str, CertificateRecord]) -> tuple[Input, ...]:
    out = []
    for number, quantity in rec.moved():
        parent = records.get(number)
        lot = lot_of(number, records) if parent is not None else Lot(key=number, lot_code=None)
        out.append(Input(number, lot, quantity, parent.holder if parent is not None else None))
    return tuple(out)


def _record_events(rec: CertificateRecord, records: Mapping[str, CertificateRecord]) -> list[ChainEvent]:
    lot = lot_of(rec.certificate_no, records)
    if rec.kind is Kind.ORIGIN:
        return [ChainEvent(Step.ISSUE, rec, rec.issued_at, lot, rec.quantity)]
    inputs = _inputs(rec, records)
    if rec.kind is Kind.HANDOFF:
        return [
            ChainEvent(Step.SHIP, rec, rec.issued_at, lot, inputs[0].quantity if inputs else rec.quantity, inputs),
            ChainEvent(Step.RECEIVE, rec, rec.issued_at, lot, rec.quantity, inputs),
        ]
    return [ChainEvent(Step.TRANSFORM, rec, rec.issued_at, lot, rec.quantity, inputs)]
