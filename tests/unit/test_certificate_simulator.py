"""The district simulator makes chains the chain consumer would accept."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.chain import ParentState, link_problems, parent_state
from ingest.route import Accepted, route
from schemas.certificate import Kind, parse_certificate
from simulators.certificates import DistrictShape, district, stall_lots
from simulators.entry_scans import certificate_pool, entry_markets, entry_messages, fleet_district


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


def test_a_small_district_carries_every_category_with_vegetables_first() -> None:
    for seed in range(20):
        records = list(district(200, seed=seed))
        origins = [r for r in records if r["kind"] == "origin"]
        assert origins[0]["product"]["category"] == "vegetable"
        stall_categories = {r["product"]["category"] for r in stall_lots(records)}
        assert "vegetable" in stall_categories and len(stall_categories) >= 2, (seed, stall_categories)
    # one harvest reaches at most max_fanout lots a hop, so a flow stays a flow, not the whole district
    shape = DistrictShape(max_fanout=4)
    root: dict[str, str] = {}
    depth: dict[str, int] = {}
    lots_per_hop: dict[tuple[str, int], int] = {}
    for rec in district(2000, seed=1, shape=shape):
        parents = [p if isinstance(p, str) else p["certificate_no"] for p in rec["parents"]]
        number = rec["certificate_no"]
        root[number] = root[parents[0]] if parents else number
        depth[number] = 1 + max((depth[p] for p in parents), default=-1)
        key = (root[number], depth[number])
        lots_per_hop[key] = lots_per_hop.get(key, 0) + 1
    # below the cap a lot may still split in three
    assert 4 < max(lots_per_hop.values()) <= 3 * (shape.max_fanout - 1)


def test_district_is_deterministic_per_seed() -> None:
    assert list(district(50, seed=9)) == list(district(50, seed=9))
    assert list(district(50, seed=9)) != list(district(50, seed=10))


def test_a_fleet_district_enters_and_ends_in_the_fleet_markets() -> None:
    markets = ["mkt-01", "mkt-02", "mkt-03"]
    start = datetime(2026, 11, 24, tzinfo=UTC)
    records = fleet_district(markets, 300, seed=3, start=start)
    assert records == fleet_district(markets, 300, seed=3, start=start)
    assert {(r["location"] or {}).get("market_id") for r in records} == {None, *markets}
    by_no = {r["certificate_no"]: r for r in records}
    for rec in records:  # a stall sells what entered its own market
        if rec["location"]["stall_id"]:
            for parent in rec["parents"]:
                number = parent if isinstance(parent, str) else parent["certificate_no"]
                assert by_no[number]["location"]["market_id"] in (None, rec["location"]["market_id"])
    pool = certificate_pool(records)
    assert len(pool) > 50 and all(ref.market_id in markets and ref.stall_id for ref in pool)
    assert {ref.certificate_no for ref in pool} == {r["certificate_no"] for r in stall_lots(records)}


def test_entry_messages_are_accepted_by_the_bridge_each_under_its_market() -> None:
    markets = ["mkt-01", "mkt-02"]
    records = fleet_district(markets, 200, seed=5, start=datetime(2026, 11, 24, tzinfo=UTC))
    messages = entry_messages(records, fallback_market="mkt-01")
    assert len(messages) == len(records)
    entry = entry_markets(records, "mkt-01")
    children: dict[str, list[str]] = {}
    for rec in records:
        for parent in rec["parents"]:
            children.setdefault(parent if isinstance(parent, str) else parent["certificate_no"], []).append(
                rec["certificate_no"])
    for rec, (topic, payload) in zip(records, messages, strict=True):
        result = route(topic, payload, datetime.now(UTC))
        assert isinstance(result, Accepted) and result.kind == "certificate", result
        assert result.reading_id == rec["certificate_no"]
        own = rec["location"]["market_id"]
        market = topic.split("/")[3]
        assert market == (own or entry[rec["certificate_no"]])
        if own is None and rec["certificate_no"] in children:  # it enters where one of its lots goes
            assert market in {entry[c] for c in children[rec["certificate_no"]]}
