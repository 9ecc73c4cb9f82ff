"""EPCIS 2.0 export: validates against the official GS1 JSON schema (tests/data/epcis)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from domain.chain_events import RapidTest, lot_of
from domain.epcis import epcis_document, inspection_event, lot_uri
from schemas.certificate import CertificateRecord, parse_certificate
from simulators.certificates import sample_chain

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "epcis" / "EPCIS-JSON-Schema.json").read_text())
CREATED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

# jsonschema only checks "uri" and "date-time" when optional packages are present; check them here.
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+", value):
        raise ValueError(f"not a URI: {value!r}")
    return True


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    datetime.fromisoformat(value)
    return True


VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=FORMATS)


def assert_valid(doc: Any) -> None:
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def chain() -> dict[str, CertificateRecord]:
    return {r["certificate_no"]: parse_certificate(r) for r in sample_chain()}


def rapid_tests(records: dict[str, CertificateRecord]) -> list[RapidTest]:
    at = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    return [
        RapidTest("0b8f6c1e-4f0e-4a7e-9a53-0c2b1f1f7d10", at, "T1", "chlorpyrifos", "colloidal_gold", "positive",
                  "m1", "st-1", "dev-1", c_line=1532.0, t_line=402.0),
        RapidTest("1b8f6c1e-4f0e-4a7e-9a53-0c2b1f1f7d11", at, "T3", "chlorpyrifos", "colloidal_gold", "negative",
                  "m2", "st-2", "dev-2", c_line=1500.0, t_line=1490.0),
        RapidTest("2b8f6c1e-4f0e-4a7e-9a53-0c2b1f1f7d12", at, "T4", "omethoate", "enzyme_inhibition", "invalid",
                  "m2", "st-2", None, inhibition_pct=12.5),
    ]


def test_the_official_schema_rejects_a_broken_event() -> None:
    """Guards this test file: the validator really checks required fields and formats."""
    bad = {"@context": ["x"], "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "yesterday",
           "epcisBody": {"eventList": [{"type": "ObjectEvent", "eventTime": "2026-11-01T00:00:00Z"}]}}
    errors = list(VALIDATOR.iter_errors(bad))
    messages = " ".join(e.message for e in errors)
    assert "eventTimeZoneOffset" in messages and "action" in messages and "yesterday" in messages


def test_document_validates_and_maps_each_record() -> None:
    recs = chain()
    doc = epcis_document(recs, rapid_tests(recs), created=CREATED)
    assert_valid(doc)
    events = doc["epcisBody"]["eventList"]
    steps = [(e["type"], e.get("action"), e.get("bizStep")) for e in events]
    assert steps.count(("ObjectEvent", "ADD", "commissioning")) == 3  # O1 O2 O3
    assert steps.count(("ObjectEvent", "OBSERVE", "shipping")) == 3  # H1 T3 T5
    assert steps.count(("ObjectEvent", "OBSERVE", "receiving")) == 3
    assert steps.count(("TransformationEvent", None, "repackaging")) == 5  # S1 S2 T1 T2 T4
    assert steps.count(("TransformationEvent", None, "commissioning")) == 1  # M1
    assert steps.count(("ObjectEvent", "OBSERVE", "inspecting")) == 3
    assert all(e["eventTimeZoneOffset"] == "+08:00" for e in events)
    assert len({e["eventID"] for e in events}) == len(events)


def by_cert(doc: dict[str, Any], number: str) -> list[dict[str, Any]]:
    uri = f"urn:rapidtrace:certificate:{number}"
    return [e for e in doc["epcisBody"]["eventList"] if uri in e.get("certificationInfo", [])]


def test_merge_lists_inputs_and_output_with_quantities() -> None:
    recs = chain()
    doc = epcis_document(recs, created=CREATED)
    [merge] = by_cert(doc, "M1")
    assert merge["inputQuantityList"] == [
        {"epcClass": "urn:rapidtrace:lot:O1", "quantity": 200.0, "uom": "KGM"},
        {"epcClass": "urn:rapidtrace:lot:O2", "quantity": 300.0, "uom": "KGM"},
    ]
    assert merge["outputQuantityList"] == [{"epcClass": "urn:rapidtrace:lot:M1", "quantity": 500.0, "uom": "KGM"}]
    assert {s["source"] for s in merge["sourceList"]} == {"urn:rapidtrace:party:coop-1", "urn:rapidtrace:party:coop-2"}


def test_handoff_keeps_the_lot_and_names_both_parties() -> None:
    recs = chain()
    ship, receive = by_cert(epcis_document(recs, created=CREATED), "H1")
    assert ship["bizStep"] == "shipping" and receive["bizStep"] == "receiving"
    assert ship["quantityList"][0]["epcClass"] == "urn:rapidtrace:lot:O1"  # same lot changes hands
    assert ship["sourceList"] == [{"type": "owning_party", "source": "urn:rapidtrace:party:coop-1"}]
    assert receive["destinationList"] == [{"type": "owning_party", "destination": "urn:rapidtrace:party:whs-2"}]


def test_rapid_test_dispositions_and_sensor_report() -> None:
    recs = chain()
    pos, neg, inv = (inspection_event(t, lot_of(t.certificate_no, recs)) for t in rapid_tests(recs))
    assert pos["disposition"] == "non_conformant" and neg["disposition"] == "conformant"
    assert "disposition" not in inv
    report = pos["sensorElementList"][0]["sensorReport"][0]
    assert report["value"] == pytest.approx(402 / 1532, rel=1e-5) and report["stringValue"] == "positive"
    assert inv["sensorElementList"][0]["sensorReport"][0]["uom"] == "P1"
    assert pos["quantityList"][0]["epcClass"] == lot_uri(lot_of("T1", recs))
    for event in (pos, neg, inv):
        assert_valid({**event, "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]})


def test_partial_chain_still_validates() -> None:
    """A downward trace lacks the parents of its first record."""
    recs = {k: v for k, v in chain().items() if k in {"S1", "T1", "T2"}}
    assert_valid(epcis_document(recs, created=CREATED))
