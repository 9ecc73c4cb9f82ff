"""FSMA 204 sortable spreadsheet: the columns, one row per event."""

from __future__ import annotations

import csv
import io

from domain.chain_events import chain_events
from domain.fsma import COLUMNS, fsma_csv
from schemas.certificate import CertificateRecord, parse_certificate
from simulators.certificates import record, sample_chain


def chain() -> dict[str, CertificateRecord]:
    return {r["certificate_no"]: parse_certificate(r) for r in sample_chain()}


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_header_is_the_fsma_column_set() -> None:
    header = next(csv.reader(io.StringIO(fsma_csv(chain()))))
    assert header == list(COLUMNS)
    for needed in ("Event Type", "Traceability Lot Code", "Product Description", "Quantity", "Unit of Measure",
                   "Location", "Previous Source or Next Recipient", "Event Date", "Traceability Lot Code Source",
                   "Reference Document Type", "Reference Document Number", "Input Traceability Lot Codes"):
        assert needed in header


def test_one_row_per_event_sorted_by_date() -> None:
    recs = chain()
    out = rows(fsma_csv(recs))
    assert len(out) == len(chain_events(recs)) == 3 + 2 * 3 + 6
    dates = [r["Event Date"] for r in out]
    assert dates == sorted(dates)
    kinds = [r["Event Type"] for r in out]
    assert kinds.count("Initial Packing") == 3 and kinds.count("Shipping") == 3
    assert kinds.count("Receiving") == 3 and kinds.count("Transformation") == 6


def test_transformation_lists_input_lots_and_reference_document() -> None:
    out = rows(fsma_csv(chain()))
    [merge] = [r for r in out if r["Reference Document Number"] == "M1"]
    assert merge["Event Type"] == "Transformation"
    assert merge["Input Traceability Lot Codes"] == "L1; L2"
    assert merge["Traceability Lot Code"] == "C1" and merge["Quantity"] == "500" and merge["Unit of Measure"] == "kg"
    assert "coop-1" in merge["Previous Source or Next Recipient"]
    assert merge["Reference Document Type"].startswith("Certificate of Conformity")


def test_handoff_rows_ship_from_the_parent_and_receive_at_the_new_holder() -> None:
    out = rows(fsma_csv(chain()))
    ship, receive = [r for r in out if r["Reference Document Number"] == "H1"]
    assert ship["Event Type"] == "Shipping" and "coop-1" in ship["Location"] and "whs-2" in ship[
        "Previous Source or Next Recipient"]
    assert receive["Event Type"] == "Receiving" and "coop-1" in receive["Previous Source or Next Recipient"]
    assert ship["Traceability Lot Code"] == receive["Traceability Lot Code"] == "L1"
    assert "coop-1" in receive["Traceability Lot Code Source"]  # the lot was created by the producer


def test_cells_cannot_become_spreadsheet_formulas() -> None:
    rec = parse_certificate(record("O9", "origin", holder="p", role="producer", quantity=1, lot_code="=HYPERLINK(1)"))
    [row] = rows(fsma_csv({"O9": rec}))
    assert row["Traceability Lot Code"] == "'=HYPERLINK(1)"
