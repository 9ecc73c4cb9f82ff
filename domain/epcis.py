"""A certificate chain and its rapid tests as a GS1 EPCIS 2.0 JSON-LD document.

Pure: no I/O.  Mapping (DOMAIN.md §4):

- issuing (origin)     -> ObjectEvent ADD ``commissioning`` with ``certificationInfo``
- hand-off             -> ObjectEvent OBSERVE ``shipping`` then ``receiving`` with source/destination lists
- split / merge        -> TransformationEvent with input and output quantity lists
- rapid test           -> ObjectEvent OBSERVE ``inspecting`` with a ``sensorReport``;
                          ``non_conformant`` on a failure, ``conformant`` on a pass

Identifiers are URNs under ``urn:rapidtrace:`` (lots, parties, places, certificates).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from domain.chain_events import ChainEvent, Lot, RapidTest, Step, chain_events, lot_of
from schemas.certificate import CertificateRecord, Holder, Kind, Quantity, Unit

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
#: Default local offset for ``eventTimeZoneOffset`` (times themselves are UTC).
DEFAULT_TZ_OFFSET = "+08:00"
_EVENT_NS = uuid.UUID("5b0b2d0e-8f5f-4f0e-9a4c-2f5c1d7e6a01")

#: UN/CEFACT Rec. 20 codes.  A jin is sent as kilograms.
UOM: dict[Unit, tuple[str, float]] = {
    Unit.KG: ("KGM", 1.0),
    Unit.G: ("GRM", 1.0),
    Unit.T: ("TNE", 1.0),
    Unit.JIN: ("KGM", 0.5),
    Unit.L: ("LTR", 1.0),
    Unit.PIECE: ("H87", 1.0),
    Unit.HEAD: ("H87", 1.0),
    Unit.BOX: ("XBX", 1.0),
    Unit.CRATE: ("XCR", 1.0),
}


def _urn(*parts: str) -> str:
    return "urn:rapidtrace:" + ":".join(quote(p, safe="-._~") for p in parts)


def certificate_uri(number: str) -> str:
    return _urn("certificate", number)


def lot_uri(lot: Lot) -> str:
    return _urn("lot", lot.key)


def party_uri(holder: Holder) -> str:
    return _urn("party", holder.id)


def _place_uri(rec: CertificateRecord) -> str | None:
    if rec.location.market_id:
        parts = ["market", rec.location.market_id]
        if rec.location.stall_id:
            parts += ["stall", rec.location.stall_id]
        return _urn(*parts)
    if rec.origin is not None and rec.origin.region_code:
        return _urn("region", rec.origin.region_code)
    return _urn("party", rec.holder.id)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _quantity(lot: Lot, quantity: Quantity) -> dict[str, Any]:
    code, factor = UOM[quantity.unit]
    return {"epcClass": lot_uri(lot), "quantity": round(quantity.value * factor, 6), "uom": code}


def _event_id(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_EVENT_NS, '|'.join(parts))}"


def _common(ev_type: str, when: datetime, event_id: str, tz_offset: str) -> dict[str, Any]:
    return {"type": ev_type, "eventID": event_id, "eventTime": _time(when), "eventTimeZoneOffset": tz_offset}


def _parties(event: ChainEvent) -> dict[str, Any]:
    sources = [{"type": "owning_party", "source": party_uri(i.holder)} for i in event.inputs if i.holder is not None]
    unique_sources = list({s["source"]: s for s in sources}.values())
    to = {"type": "owning_party", "destination": party_uri(event.record.holder)}
    if all(s["source"] == to["destination"] for s in unique_sources):
        return {}
    return {"sourceList": unique_sources, "destinationList": [to]}


def _ilmd(event: ChainEvent) -> dict[str, Any]:
    return {"ilmd": {"cbvmda:lotNumber": event.lot.lot_code}} if event.lot.lot_code else {}


def _issue_event(event: ChainEvent, tz: str) -> dict[str, Any]:
    rec = event.record
    place = _place_uri(rec)
    return {
        **_common("ObjectEvent", event.time, _event_id(rec.certificate_no, "issue"), tz),
        "certificationInfo": [certificate_uri(rec.certificate_no)],
        "action": "ADD",
        "quantityList": [_quantity(event.lot, event.quantity)],
        "bizStep": "commissioning",
        "disposition": "active",
        **({"readPoint": {"id": place}, "bizLocation": {"id": place}} if place else {}),
        **_ilmd(event),
    }


def _handoff_event(event: ChainEvent, tz: str) -> dict[str, Any]:
    rec = event.record
    shipping = event.step is Step.SHIP
    doc: dict[str, Any] = {
        **_common("ObjectEvent", event.time, _event_id(rec.certificate_no, event.step.value), tz),
        "certificationInfo": [certificate_uri(rec.certificate_no)],
        "action": "OBSERVE",
        "quantityList": [_quantity(event.lot, event.quantity)],
        "bizStep": "shipping" if shipping else "receiving",
        "disposition": "in_transit" if shipping else "active",
        "sourceList": [{"type": "owning_party", "source": party_uri(i.holder)}
                       for i in event.inputs if i.holder is not None],
        "destinationList": [{"type": "owning_party", "destination": party_uri(rec.holder)}],
    }
    if not doc["sourceList"] and event.inputs:
        doc["sourceList"] = [{"type": "owning_party", "source": _urn("certificate-holder", event.inputs[0].parent_no)}]
    elif not doc["sourceList"]:  # the source is outside the reader's scope
        del doc["sourceList"]
    place = _place_uri(rec)
    if place and not shipping:
        doc["bizLocation"] = {"id": place}
    return doc


def _transform_event(event: ChainEvent, tz: str) -> dict[str, Any]:
    rec = event.record
    place = _place_uri(rec)
    return {
        **_common("TransformationEvent", event.time, _event_id(rec.certificate_no, "transform"), tz),
        "certificationInfo": [certificate_uri(rec.certificate_no)],
        "inputQuantityList": [_quantity(i.lot, i.quantity) for i in event.inputs],
        "outputQuantityList": [_quantity(event.lot, event.quantity)],
        "transformationID": _urn("transformation", rec.certificate_no),
        "bizStep": "repackaging" if rec.kind is Kind.SPLIT else "commissioning",
        "disposition": "active",
        **({"bizLocation": {"id": place}} if place else {}),
        **_parties(event),
        **_ilmd(event),
    }


def _sensor_reports(test: RapidTest) -> list[dict[str, Any]]:
    substance = _urn("analyte", test.analyte)
    report: dict[str, Any] = {"type": "Dimensionless", "chemicalSubstance": substance}
    if test.verdict:
        report["stringValue"] = test.verdict
    if test.inhibition_pct is not None:
        return [{**report, "value": test.inhibition_pct, "uom": "P1"}]
    if test.c_line is not None and test.t_line is not None and test.c_line > 0:
        return [{**report, "value": round(test.t_line / test.c_line, 6)}]
    return [report]


def inspection_event(test: RapidTest, lot: Lot, tz_offset: str = DEFAULT_TZ_OFFSET) -> dict[str, Any]:
    """An ``inspecting`` ObjectEvent for one rapid test of a lot."""
    station = _urn("station", test.market_id or "unknown", test.station_id or "unknown")
    metadata: dict[str, Any] = {"time": _time(test.measured_at)}
    if test.device_id:
        metadata["deviceID"] = _urn("device", test.device_id)
    doc: dict[str, Any] = {
        **_common("ObjectEvent", test.measured_at, _event_id("reading", test.reading_id), tz_offset),
        "action": "OBSERVE",
        "quantityList": [{"epcClass": lot_uri(lot)}],
        "bizStep": "inspecting",
        "readPoint": {"id": station},
        "sensorElementList": [{"sensorMetadata": metadata, "sensorReport": _sensor_reports(test)}],
    }
    if test.market_id:
        doc["bizLocation"] = {"id": _urn("market", test.market_id)}
    if test.verdict in ("positive", "suspicious", "negative"):
        doc["disposition"] = "non_conformant" if test.failed else "conformant"
    return doc


_RENDER = {Step.ISSUE: _issue_event, Step.SHIP: _handoff_event, Step.RECEIVE: _handoff_event,
           Step.TRANSFORM: _transform_event}


def epcis_events(
    records: Mapping[str, CertificateRecord],
    tests: Iterable[RapidTest] = (),
    *,
    tz_offset: str = DEFAULT_TZ_OFFSET,
) -> list[dict[str, Any]]:
    keyed = [((e.time, 0, i, ""), _RENDER[e.step](e, tz_offset)) for i, e in enumerate(chain_events(records))]
    keyed += [((t.measured_at, 1, 0, t.reading_id), inspection_event(t, lot_of(t.certificate_no, records), tz_offset))
              for t in tests if t.certificate_no in records]
    return [doc for _, doc in sorted(keyed, key=lambda pair: pair[0])]


def epcis_document(
    records: Mapping[str, CertificateRecord],
    tests: Iterable[RapidTest] = (),
    *,
    created: datetime,
    tz_offset: str = DEFAULT_TZ_OFFSET,
) -> dict[str, Any]:
    """An ``EPCISDocument`` (schemaVersion 2.0) holding every event of the chain."""
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(created),
        "epcisBody": {"eventList": epcis_events(records, tests, tz_offset=tz_offset)},
    }
