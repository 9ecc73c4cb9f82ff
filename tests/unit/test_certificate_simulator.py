"""The district simulator makes chains the chain consumer would accept."""

from __future__ import annotations

from domain.chain import ParentState, link_problems, parent_state
from schemas.certificate import Kind, parse_certificate
from simulators.certificates import DistrictShape, district, stall_lots


def test_district_records_are_valid_parents_first_and_never_overdraw() -> None:
    records = list(district(3000, seed=4))
    assert len(records) == 3000
    states: dict[str, ParentState] = {}
    depth: dict[str, int] = {}
    kinds = set()
    for data in records:
        rec = parse_certificate(data)
        kinds.add(rec.kind)
        assert all(p.certificate_no in states for p in rec.parents), "parents come first"
        assert link_problems(rec, {p.certificate_no: states[p.certificate_no] for p in rec.parents}) == []
        for number, taken in rec.moved():
            s = states[number]
            states[number] = ParentState(s.certificate_no, s.product_name, s.category, s.dimension,
                                         s.quantity_base, s.consumed_base + taken.base, s.digest)
        states[rec.certificate_no] = parent_state(rec, "d" * 64)
        depth[rec.certificate_no] = 1 + max((depth[p.certificate_no] for p in rec.parents), default=-1)
    assert kinds == set(Kind)
    assert max(depth.values()) == DistrictShape().max_hops
    stalls = list(stall_lots(records))
    assert stalls and all(r["location"]["market_id"] and r["holder"]["role"] == "vendor" for r in stalls)


def test_district_is_deterministic_per_seed() -> None:
    assert list(district(50, seed=9)) == list(district(50, seed=9))
    assert list(district(50, seed=9)) != list(district(50, seed=10))
