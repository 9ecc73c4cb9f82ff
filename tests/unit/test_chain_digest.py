"""Canonical JSON, digests, parent rules, cycles and verification (domain.chain)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from domain.chain import (
    Problem,
    StoredLink,
    StoredNode,
    canonical_json,
    canonical_record,
    find_cycle,
    link_problems,
    parent_state,
    record_columns,
    record_digest,
    verify_nodes,
)
from schemas.certificate import CertificateRecord, parse_certificate
from simulators.certificates import record, sample_chain


def chain() -> dict[str, CertificateRecord]:
    return {r["certificate_no"]: parse_certificate(r) for r in sample_chain()}


def digests(records: dict[str, CertificateRecord]) -> dict[str, str]:
    out: dict[str, str] = {}
    for no, rec in records.items():  # sample_chain is parents-first
        out[no] = record_digest(rec, {p.certificate_no: out[p.certificate_no] for p in rec.parents})
    return out


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": "韭"}) == '{"a":"韭","b":1}'.encode()


def test_canonical_record_is_utc_and_independent_of_input_form() -> None:
    a = record("O1", "origin", holder="c", role="producer", quantity=500)
    b = {**a, "issued_at": "2026-11-01T08:00:00+08:00", "quantity": {"unit": "kg", "value": 500.0},
         "location": {}}
    ca, cb = canonical_record(parse_certificate(a)), canonical_record(parse_certificate(b))
    assert ca == cb
    assert ca["issued_at"] == "2026-11-01T00:00:00Z"
    assert "lot_code" not in ca  # absent optional fields are dropped, not null


def test_digest_is_sha256_of_record_and_parent_digests() -> None:
    recs = chain()
    d = digests(recs)
    o1 = recs["O1"]
    expected = hashlib.sha256(canonical_json({"parents": [], "record": canonical_record(o1)})).hexdigest()
    assert d["O1"] == expected
    # a child's digest moves when any parent's digest moves
    assert record_digest(recs["M1"], {"O1": "0" * 64, "O2": d["O2"]}) != d["M1"]
    with pytest.raises(ValueError, match="exactly"):
        record_digest(recs["M1"], {"O1": d["O1"]})


def test_any_field_change_changes_the_digest() -> None:
    base = record("O1", "origin", holder="c", role="producer", quantity=500)
    changed = {**base, "quantity": {"value": 500.5, "unit": "kg"}}
    assert record_digest(parse_certificate(base), {}) != record_digest(parse_certificate(changed), {})


def state(recs: dict[str, CertificateRecord], no: str, consumed: float = 0.0) -> Any:
    return parent_state(recs[no], "d" * 64, consumed)


def test_split_within_remaining_is_fine_and_overdraw_is_rejected() -> None:
    recs = chain()
    s1 = recs["S1"]  # takes 200 of M1's 500
    assert link_problems(s1, {"M1": state(recs, "M1", consumed=300)}) == []
    [problem] = link_problems(s1, {"M1": state(recs, "M1", consumed=300.5)})
    assert problem.code is Problem.OVERDRAW and "M1" in problem.reason


def test_superseded_draw_is_credited_back() -> None:
    recs = chain()
    assert link_problems(recs["S1"], {"M1": state(recs, "M1", consumed=500)}, credit={"M1": 200}) == []


def test_product_contradictions() -> None:
    recs = chain()
    other = parse_certificate(record("X", "origin", holder="p", role="producer", quantity=500,
                                     product=("猪肉", "meat")))
    [p] = link_problems(recs["S1"], {"M1": parent_state(other, "d" * 64)})
    assert p.code is Problem.CONTRADICTION and "category" in p.reason
    celery = parse_certificate(record("X", "origin", holder="p", role="producer", quantity=500,
                                      product=("芹菜", "vegetable")))
    [p] = link_problems(recs["S1"], {"M1": parent_state(celery, "d" * 64)})
    assert "芹菜" in p.reason
    boxes = parse_certificate(record("X", "origin", holder="p", role="producer", quantity=500, unit="box"))
    [p] = link_problems(recs["S1"], {"M1": parent_state(boxes, "d" * 64)})
    assert p.code is Problem.CONTRADICTION and "unit" in p.reason


def test_merge_of_same_category_different_products_is_fine() -> None:
    recs = chain()
    celery = parse_certificate(record("O2", "origin", holder="p", role="producer", quantity=300,
                                      product=("芹菜", "vegetable")))
    assert link_problems(recs["M1"], {"O1": state(recs, "O1"), "O2": parent_state(celery, "d" * 64)}) == []


def test_find_cycle() -> None:
    waits = {"A": ["B"], "B": ["C"], "C": ["A"], "D": ["A"]}
    assert find_cycle("A", waits) == ["A", "B", "C", "A"]
    assert find_cycle("D", waits) is None
    assert find_cycle("Z", {"Z": ["Y"]}) is None


def stored(recs: dict[str, CertificateRecord], d: dict[str, str], depth: dict[str, int]) -> list[StoredNode]:
    return [
        StoredNode(no, depth[no], canonical_record(rec), d[no], record_columns(rec),
                   [StoredLink(p, q.value, q.unit.value, d[p]) for p, q in rec.moved()])
        for no, rec in recs.items() if no in depth
    ]


UP_FROM_T1 = {"T1": 0, "S1": 1, "M1": 2, "O1": 3, "O2": 3}


def test_verify_clean_chain() -> None:
    recs = chain()
    assert verify_nodes(stored(recs, digests(recs), UP_FROM_T1)) == []


def test_verify_names_the_edited_record() -> None:
    recs = chain()
    nodes = stored(recs, digests(recs), UP_FROM_T1)
    m1 = next(n for n in nodes if n.certificate_no == "M1")
    m1.record["quantity"]["value"] = 900.0
    found = verify_nodes(nodes)
    assert found and {a.certificate_no for a in found} == {"M1"}


def test_verify_names_a_parent_whose_digest_was_rewritten() -> None:
    recs = chain()
    d = digests(recs)
    nodes = stored(recs, d, UP_FROM_T1)
    o2 = next(n for n in nodes if n.certificate_no == "O2")
    forged = {**o2.record, "quantity": {"value": 9999.0, "unit": "kg"}}
    forged_digest = record_digest(parse_certificate(forged), {})
    nodes = [n if n.certificate_no != "O2" else StoredNode("O2", 3, forged, forged_digest, dict(n.columns), [])
             for n in nodes]
    found = verify_nodes(nodes)
    assert found[0].certificate_no == "O2"


def test_verify_catches_a_column_or_link_edit() -> None:
    recs = chain()
    nodes = stored(recs, digests(recs), UP_FROM_T1)
    s1 = next(n for n in nodes if n.certificate_no == "S1")
    s1.columns["holder_id"] = "someone-else"  # type: ignore[index]
    s1.links[0] = StoredLink("M1", 150.0, "kg", s1.links[0].parent_digest)
    found = verify_nodes(nodes)
    assert {a.certificate_no for a in found} == {"S1"}
    assert any("holder_id" in a.what for a in found) and any("links" in a.what for a in found)
