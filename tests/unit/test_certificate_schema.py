"""The rt.certificate/1 record: what a record can get wrong on its own."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.certificate import CertificateRecord, Kind, Unit, parse_certificate
from simulators.certificates import record, sample_chain

SPEC_EXAMPLE: dict[str, Any] = {
    "schema": "rt.certificate/1",
    "certificate_no": "HGZ-320412-2026-000913",
    "kind": "origin",
    "issued_at": "2026-11-27T17:40:00+08:00",
    "product": {"name": "韭菜", "category": "vegetable"},
    "quantity": {"value": 500, "unit": "kg"},
    "lot_code": "L20261127-03",
    "holder": {"id": "coop-wj-0031", "name": "…合作社", "role": "producer", "contact": "0519-…"},
    "origin": {"region_code": "320412", "place": "…镇…村"},
    "commitment_basis": ["self_test"],
    "location": {"market_id": None, "stall_id": None},
    "parents": [],
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def test_spec_example_parses_with_utc_time() -> None:
    rec = parse_certificate(SPEC_EXAMPLE)
    assert rec.kind is Kind.ORIGIN
    assert rec.issued_at.isoformat() == "2026-11-27T09:40:00+00:00"
    assert rec.quantity.unit is Unit.KG and rec.quantity.base == 500.0


def test_sample_chain_is_valid() -> None:
    assert [parse_certificate(r).certificate_no for r in sample_chain()][:3] == ["O1", "O2", "O3"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "handoff"}, "exactly one parent"),
        ({"parents": ["A"]}, "no parents"),
        ({"holder": {"id": "c-1", "role": "collector"}}, "issued by a producer"),
        ({"commitment_basis": []}, "commitment_basis"),
        ({"commitment_basis": ["lab_says_so"]}, "commitment_basis"),
        ({"quantity": {"value": 5, "unit": "bushel"}}, "unit"),
        ({"quantity": {"value": 0, "unit": "kg"}}, "greater than 0"),
        ({"quantity": {"value": float("nan"), "unit": "kg"}}, "finite"),
        ({"issued_at": "2026-11-27T17:40:00"}, "offset"),
        ({"certificate_no": "HGZ 0913"}, "certificate_no"),
        ({"holder": {"id": "a/b", "role": "producer"}}, "holder.id"),
        ({"schema": "rt.certificate/2"}, "schema"),
        ({"surprise": 1}, "surprise"),
        ({"product": {"name": "韭菜", "category": "spaceship"}}, "category"),
    ],
)
def test_record_rules(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_certificate(with_(SPEC_EXAMPLE, **changes))
    assert message in str(err.value)


def split_of(parent: str, **kw: Any) -> dict[str, Any]:
    return record("C1", "split", holder="w-1", role="wholesaler", quantity=10, parents=[parent], **kw)


def test_split_and_handoff_take_their_own_quantity_by_default() -> None:
    rec = parse_certificate(split_of("P1"))
    assert [(no, q.value) for no, q in rec.moved()] == [("P1", 10.0)]


def test_self_parent_and_duplicate_parents_are_rejected() -> None:
    with pytest.raises(ValidationError, match="own parent"):
        parse_certificate(split_of("C1"))
    with pytest.raises(ValidationError, match="distinct"):
        parse_certificate(record("C1", "merge", holder="c", role="collector", quantity=2,
                                 parents=[("P", 1), ("P", 1)]))


def test_merge_needs_two_parents_with_quantities_that_add_up() -> None:
    ok = record("M", "merge", holder="c", role="collector", quantity=30, parents=[("A", 10), ("B", 20)])
    assert parse_certificate(ok).quantity.value == 30
    with pytest.raises(ValidationError, match="two or more"):
        parse_certificate(record("M", "merge", holder="c", role="collector", quantity=10, parents=[("A", 10)]))
    with pytest.raises(ValidationError, match="add up to 30"):
        parse_certificate(with_(ok, quantity={"value": 31, "unit": "kg"}))
    with pytest.raises(ValidationError, match="quantity taken from each"):
        parse_certificate(with_(ok, parents=["A", "B"]))


def test_merge_converts_mass_units() -> None:
    rec = record("M", "merge", holder="c", role="collector", quantity=1.5, parents=[("A", 1), ("B", 1)], unit="kg")
    rec["parents"][0]["quantity"] = {"value": 1000, "unit": "g"}
    rec["parents"][1]["quantity"] = {"value": 1, "unit": "jin"}
    assert parse_certificate(rec).quantity.base == 1.5


def test_supersedes_cannot_name_itself() -> None:
    with pytest.raises(ValidationError, match="supersede itself"):
        parse_certificate(with_(SPEC_EXAMPLE, supersedes=SPEC_EXAMPLE["certificate_no"]))


def test_record_is_immutable() -> None:
    rec = parse_certificate(SPEC_EXAMPLE)
    with pytest.raises(ValidationError):
        rec.kind = Kind.MERGE  # type: ignore[misc]
    assert isinstance(rec, CertificateRecord)
