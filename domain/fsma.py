"""A certificate chain as an FSMA 204 sortable spreadsheet (CSV), one row per event.

Pure: no I/O.  Rows are the chain's events (see :mod:`domain.chain_events`):
issuing is ``Initial Packing``, a hand-off is a ``Shipping`` row and a
``Receiving`` row, a split or merge is a ``Transformation`` row with its input
lot codes.  Rapid tests are not FSMA critical tracking events and are left out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC

from domain.chain_events import ChainEvent, Step, chain_events
from schemas.certificate import CertificateRecord, Holder

COLUMNS = (
    "Event Type",
    "Traceability Lot Code",
    "Product Description",
    "Quantity",
    "Unit of Measure",
    "Location",
    "Previous Source or Next Recipient",
    "Event Date",
    "Traceability Lot Code Source",
    "Reference Document Type",
    "Reference Document Number",
    "Input Traceability Lot Codes",
)
EVENT_TYPES = {Step.ISSUE: "Initial Packing", Step.SHIP: "Shipping", Step.RECEIVE: "Receiving",
               Step.TRANSFORM: "Transformation"}
REFERENCE_TYPE = "Certificate of Conformity (承诺达标合格证)"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str | None) -> str:
    """A cell a spreadsheet will not run as a formula."""
    text = value or ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _holder(holder: Holder | None, fallback: str = "") -> str:
    if holder is None:
        return fallback
    return f"{holder.name} ({holder.id})" if holder.name else holder.id


def _location(rec: CertificateRecord) -> str:
    loc = rec.location
    if loc.market_id:
        stall = f" stall {loc.stall_id}" if loc.stall_id else ""
        return f"market {loc.market_id}{stall} / {_holder(rec.holder)}"
    if rec.origin is not None and (rec.origin.place or rec.origin.region_code):
        where = " ".join(x for x in (rec.origin.region_code, rec.origin.place) if x)
        return f"{where} / {_holder(rec.holder)}"
    return _holder(rec.holder)


def _lot_code(number: str, lot_code: str | None) -> str:
    return lot_code or number


def _lot_source(event: ChainEvent, records: Mapping[str, CertificateRecord]) -> str:
    creator = records.get(event.lot.key)
    return _location(creator) if creator is not None else event.lot.key


def _counterpart(event: ChainEvent) -> str:
    if event.step is Step.SHIP:
        return _holder(event.record.holder)
    return "; ".join(_holder(i.holder, f"holder of {i.parent_no}") for i in event.inputs)


def _row(event: ChainEvent, records: Mapping[str, CertificateRecord]) -> list[str]:
    rec = event.record
    shipping_from = records.get(event.inputs[0].parent_no) if event.step is Step.SHIP and event.inputs else None
    inputs = ""
    if event.step is Step.TRANSFORM:
        inputs = "; ".join(_lot_code(i.lot.key, i.lot.lot_code) for i in event.inputs)
    return [
        EVENT_TYPES[event.step],
        _text(_lot_code(event.lot.key, event.lot.lot_code)),
        _text(f"{rec.product.name} ({rec.product.category.value})"),
        f"{event.quantity.value:g}",
        event.quantity.unit.value,
        _text(_location(shipping_from) if shipping_from is not None else _location(rec)),
        _text(_counterpart(event)),
        rec.issued_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        _text(_lot_source(event, records)),
        REFERENCE_TYPE,
        _text(rec.certificate_no),
        _text(inputs),
    ]


def fsma_rows(records: Mapping[str, CertificateRecord]) -> list[list[str]]:
    """Rows in time order (then lot code), one per event, without the header."""
    return [_row(e, records) for e in chain_events(records)]


def fsma_csv(records: Mapping[str, CertificateRecord]) -> str:
    """The CSV text: header then one row per event (RFC 4180, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(fsma_rows(records))
    return out.getvalue()

