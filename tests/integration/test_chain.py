"""The certificate chain against a real database (and, end to end, real Kafka)."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from consumers.chain_store import BatchResult, ChainStore
from domain.chain import record_digest
from schemas.certificate import parse_certificate
from schemas.settings import Settings
from simulators.certificates import record, sample_chain
from storage.db import connect
from tests.helpers import rows, scalar, wait_for
from tests.unit.test_epcis import assert_valid

pytestmark = pytest.mark.integration

TOPIC = "rt.certificates.v1"


def encode(rec: dict[str, Any]) -> bytes:
    return json.dumps(rec, ensure_ascii=False).encode()


def store(dsn: str, records: list[Any]) -> BatchResult:
    conn = connect(dsn)
    try:
        values = [(r if isinstance(r, bytes) else encode(r), TOPIC) for r in records]
        result = ChainStore(Settings()).store(conn, values)
        conn.commit()
        return result
    finally:
        conn.close()


def expected_digests() -> dict[str, str]:
    out: dict[str, str] = {}
    for data in sample_chain():
        rec = parse_certificate(data)
        out[rec.certificate_no] = record_digest(rec, {p.certificate_no: out[p.certificate_no] for p in rec.parents})
    return out


def stored_digests(dsn: str) -> dict[str, str]:
    return {no: digest for no, digest in rows(dsn, "SELECT certificate_no, digest FROM certificates")}


def reset(dsn: str) -> None:
    conn = connect(dsn)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE certificate_links, certificate_waits, certificate_held, certificates")
    conn.commit()
    conn.close()


def test_any_arrival_order_converges_to_the_same_chain_and_digests(db_dsn: str) -> None:
    chain = sample_chain()
    expected = expected_digests()
    orders = {
        "in order, one by one": [[r] for r in chain],
        "children first, one by one": [[r] for r in reversed(chain)],
        "shuffled, one batch": [random.Random(7).sample(chain, len(chain))],
        "shuffled, batches of 3": [chain[i:i + 3] for i in range(0, 12, 3)][::-1],
    }
    for name, batches in orders.items():
        reset(db_dsn)
        results = [store(db_dsn, batch) for batch in batches]
        assert stored_digests(db_dsn) == expected, name
        assert scalar(db_dsn, "SELECT count(*) FROM certificate_held") == 0, name
        assert scalar(db_dsn, "SELECT count(*) FROM certificate_links") == 10, name
        assert not [d for r in results for d in r.dead], name
    depth = {no: d for no, d in rows(db_dsn, "SELECT certificate_no, depth FROM certificates")}
    assert depth["O1"] == 0 and depth["M1"] == 1 and depth["T1"] == 3


def test_held_record_is_visible_until_its_parent_arrives(db_dsn: str, api_client: Any) -> None:
    chain = {r["certificate_no"]: r for r in sample_chain()}
    result = store(db_dsn, [chain["T1"]])
    assert result.held == 1
    body = api_client.get("/v1/certificates/T1").json()
    assert body["status"] == "held" and body["waits_for"] == ["S1"]
    store(db_dsn, [chain["O1"], chain["O2"], chain["M1"]])
    assert api_client.get("/v1/certificates/T1").json()["status"] == "held"
    result = store(db_dsn, [chain["S1"]])
    assert result.accepted == 2 and result.released == 1
    got = api_client.get("/v1/certificates/T1").json()
    assert got["status"] == "accepted" and got["digest"] == expected_digests()["T1"]


def test_same_record_twice_is_one_and_a_different_one_is_a_conflict(db_dsn: str) -> None:
    o1 = sample_chain()[0]
    assert store(db_dsn, [o1, o1]).accepted == 1
    again = store(db_dsn, [o1])
    assert again.accepted == 0 and again.duplicates == 1 and not again.dead
    changed = {**o1, "quantity": {"value": 501, "unit": "kg"}}
    [dead] = store(db_dsn, [changed]).dead
    assert dead.code == "certificate_conflict" and "O1" in dead.reason
    assert scalar(db_dsn, "SELECT record->'quantity'->>'value' FROM certificates") == "500.0"


def test_cycles_overdraws_and_contradictions_are_dead_letters(db_dsn: str) -> None:
    o = record("P", "origin", holder="coop", role="producer", quantity=500)
    a = record("A", "split", holder="w", role="wholesaler", quantity=10, parents=["B"])
    b = record("B", "split", holder="w", role="wholesaler", quantity=10, parents=["A"])
    s1 = record("S1", "split", holder="w", role="wholesaler", quantity=300, parents=["P"])
    s2 = record("S2", "split", holder="w", role="wholesaler", quantity=300, parents=["P"])
    pork = record("X", "split", holder="w", role="wholesaler", quantity=1, parents=["P"], product=("猪肉", "meat"))
    assert store(db_dsn, [a]).held == 1
    result = store(db_dsn, [o, b, s1, s2, pork, b"{not json"])
    codes = sorted((d.code, d.reason.split(":")[0]) for d in result.dead)
    assert codes == [("certificate_contradiction", "X"), ("certificate_cycle", "B"),
                     ("certificate_invalid", "not JSON"), ("certificate_overdraw", "S2")]
    cycle = next(d for d in result.dead if d.code == "certificate_cycle")
    assert "B -> A -> B" in cycle.reason
    overdraw = next(d for d in result.dead if d.code == "certificate_overdraw")
    assert "which has 200 of 500 left" in overdraw.reason
    assert sorted(r[0] for r in rows(db_dsn, "SELECT certificate_no FROM certificates")) == ["P", "S1"]


def test_a_correction_supersedes_and_replaces_the_old_draw(db_dsn: str, api_client: Any) -> None:
    o = record("P", "origin", holder="coop", role="producer", quantity=500)
    s1 = record("S1", "split", holder="w", role="wholesaler", quantity=400, parents=["P"])
    fix = record("S1b", "split", holder="w", role="wholesaler", quantity=450, parents=["P"], supersedes="S1")
    assert store(db_dsn, [o, s1, fix]).accepted == 3  # 450 replaces 400: not an overdraw
    assert api_client.get("/v1/certificates/S1").json()["superseded_by"] == "S1b"
    again = record("S1c", "split", holder="w", role="wholesaler", quantity=10, parents=["P"], supersedes="S1")
    [dead] = store(db_dsn, [again]).dead
    assert dead.code == "certificate_conflict" and "already superseded" in dead.reason
    with pytest.raises(Exception, match="immutable"):
        conn = connect(db_dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("UPDATE certificates SET lot_code = 'x' WHERE certificate_no = 'S1'")
        finally:
            conn.close()


def edit_quantity_behind_the_trigger(dsn: str, certificate_no: str) -> None:
    """What a superuser can do: change a stored record in place, bypassing the immutability trigger."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute("UPDATE certificates SET record = jsonb_set(record, '{quantity,value}', '900')"
                        " WHERE certificate_no = %s", (certificate_no,))
        conn.commit()
    finally:
        conn.close()


def test_verify_names_a_row_edited_directly_in_the_database(db_dsn: str, api_client: Any) -> None:
    store(db_dsn, sample_chain())
    clean = api_client.get("/v1/certificates/T1/verify").json()
    assert clean["ok"] is True and clean["checked"] == 5 and clean["first_altered"] is None
    edit_quantity_behind_the_trigger(db_dsn, "M1")
    found = api_client.get("/v1/certificates/T1/verify").json()
    assert found["ok"] is False and found["first_altered"] == "M1"
    assert {a["certificate_no"] for a in found["alterations"]} == {"M1"}
    assert api_client.get("/v1/certificates/T4/verify").json()["ok"] is True  # not upstream of M1


def test_trace_quantities_add_up(db_dsn: str, api_client: Any) -> None:
    store(db_dsn, sample_chain())
    down = api_client.get("/v1/certificates/M1/trace", params={"direction": "down"}).json()
    nodes = {n["certificate_no"]: n for n in down["nodes"]}
    assert set(nodes) == {"M1", "S1", "S2", "T1", "T2", "T3"}
    moved: dict[str, float] = {}
    for edge in down["edges"]:
        moved[edge["from"]] = moved.get(edge["from"], 0) + edge["quantity"]["value"]
    for parent, total in moved.items():
        assert total <= nodes[parent]["quantity"]["value"]
    assert moved == {"M1": 500, "S1": 200, "S2": 300}
    up = api_client.get("/v1/certificates/M1/trace", params={"direction": "up"}).json()
    assert sum(e["quantity"]["value"] for e in up["edges"]) == nodes["M1"]["quantity"]["value"]
    assert {n["holder"]["id"] for n in up["nodes"]} == {"col-1", "coop-1", "coop-2"}
    one = api_client.get("/v1/certificates/T1/trace", params={"direction": "up", "max_depth": 1}).json()
    assert [(n["certificate_no"], n["side"]) for n in one["nodes"]] == [("T1", "self"), ("S1", "up")]
    both = api_client.get("/v1/certificates/S1/trace", params={"max_depth": 1}).json()
    assert {(n["certificate_no"], n["side"]) for n in both["nodes"]} == {
        ("S1", "self"), ("M1", "up"), ("T1", "down"), ("T2", "down")}
    assert api_client.get("/v1/certificates/NOPE/trace").status_code == 404


def insert_reading(dsn: str, certificate_no: str | None, lot_code: str | None, market: str, result: str) -> str:
    rid = str(uuid.uuid4())
    conn = connect(dsn)
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO readings (reading_id, measured_at, received_at, market_id, station_id, device_id,
                   commodity, certificate_no, lot_code, analyte, method, strip_lot, c_line, t_line, device_result, raw)
               VALUES (%s, %s, now(), %s, 'st', 'dev', '韭菜', %s, %s, 'chlorpyrifos', 'colloidal_gold', 'CG1',
                       1500, 300, %s, '{}')""",
            (rid, datetime(2026, 11, 2, tzinfo=UTC), market, certificate_no, lot_code, result),
        )
        # every writer of readings claims the id (migration 0005): lookups by id alone read it there
        cur.execute("INSERT INTO reading_ids (reading_id, measured_at) VALUES (%s, %s)",
                    (rid, datetime(2026, 11, 2, tzinfo=UTC)))
    conn.commit()
    conn.close()
    return rid


def test_recall_scope_on_a_hand_made_chain(db_dsn: str, api_client: Any) -> None:
    store(db_dsn, sample_chain())
    failed = insert_reading(db_dsn, "T1", "W1-1", "m1", "positive")
    other = insert_reading(db_dsn, None, "W2", "m2", "negative")  # names only its lot code (T3's)
    unrelated = insert_reading(db_dsn, "T5", "L3", "m1", "negative")
    scope = api_client.get(f"/v1/readings/{failed}/recall-scope").json()
    assert scope["start"] == ["T1"] and scope["origins"] == ["O1", "O2"]
    assert [n["certificate_no"] for n in scope["chain_up"]["nodes"]] == ["T1", "S1", "M1", "O1", "O2"]
    assert {lot["certificate_no"] for lot in scope["lots"]} == {
        "O1", "O2", "M1", "H1", "S1", "S2", "T1", "T2", "T3", "T4"}
    assert [(s["market_id"], s["stall_id"], s["quantity"]) for s in scope["stalls"]] == [
        ("m1", "stall-1", {"kg": 120}), ("m1", "stall-2", {"kg": 80}), ("m2", "stall-3", {"kg": 300}),
        ("m2", "stall-4", {"kg": 100})]
    tested = {t["reading_id"]: t["certificate_no"] for t in scope["tests"]}
    assert tested == {failed: "T1", other: "T3"} and unrelated not in tested
    lots = {lot["certificate_no"]: lot for lot in scope["lots"]}
    assert [t["failed"] for t in lots["T1"]["tests"]] == [True]
    # by lot code alone: the same answer
    by_lot = api_client.get(f"/v1/readings/{other}/recall-scope").json()
    assert by_lot["start"] == ["T3"] and by_lot["origins"] == ["O1", "O2"]
    assert api_client.get(f"/v1/readings/{uuid.uuid4()}/recall-scope").status_code == 404

    failure_id = str(uuid.uuid4())
    conn = connect(db_dsn)
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO failures (failure_id, dedup_key, kind, workflow, raised_at, summary, reading_id,
                   measured_at, market_id, certificate_no, lot_code, state, state_since)
               VALUES (%s, %s, 'positive', 'screen', now(), 'positive strip', %s, %s, 'm1', 'T1', 'W1-1',
                       'screen_positive', now())""",
            (failure_id, f"k-{failure_id}", failed, datetime(2026, 11, 2, tzinfo=UTC)),
        )
    conn.commit()
    conn.close()
    from_failure = api_client.get(f"/v1/failures/{failure_id}/recall-scope").json()
    assert from_failure["failure_id"] == failure_id
    assert from_failure["origins"] == ["O1", "O2"] and from_failure["stalls"] == scope["stalls"]
    assert api_client.get(f"/v1/failures/{uuid.uuid4()}/recall-scope").status_code == 404


def test_exports_from_the_api(db_dsn: str, api_client: Any) -> None:
    store(db_dsn, sample_chain())
    insert_reading(db_dsn, "T1", "W1-1", "m1", "positive")
    response = api_client.get("/v1/certificates/S1/epcis")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/ld+json")
    doc = response.json()
    assert_valid(doc)
    steps = [e.get("bizStep") for e in doc["epcisBody"]["eventList"]]
    assert steps.count("inspecting") == 1 and steps.count("commissioning") == 3  # O1, O2 and the merge M1
    table = list(csv.reader(io.StringIO(api_client.get("/v1/certificates/S1/fsma.csv").text)))
    assert table[0][0] == "Event Type" and len(table) == 1 + 2 + 4  # O1 O2 issue; M1 S1 T1 T2 transform


@pytest.fixture
def chain_settings(settings: Settings) -> Settings:
    return settings.with_overrides(consumer_batch_size=500)


def test_submitted_records_reach_the_chain_through_kafka(chain_settings: Settings, pipeline: Any,
                                                          api_client: Any) -> None:
    pipeline("chain", "deadletters", bridge=False, settings_override=chain_settings)
    dsn = chain_settings.database_url
    assert dsn
    chain = sample_chain()
    first = api_client.post("/v1/certificates", json=chain[0])
    assert first.status_code == 202 and first.headers["location"] == "/v1/certificates/O1"
    batch = api_client.post("/v1/certificates", json=list(reversed(chain[1:])))
    assert batch.status_code == 202 and batch.json()["count"] == 11
    overdraw = record("S9", "split", holder="w", role="wholesaler", quantity=1, parents=["T4"])
    overdraw["quantity"]["value"] = 101
    assert api_client.post("/v1/certificates", json={"records": [overdraw]}).status_code == 202
    bad = api_client.post("/v1/certificates", json=[chain[0], {**chain[1], "kind": "merge"}])
    assert bad.status_code == 422 and bad.json()["error"]["details"]["records"][0]["index"] == 1

    wait_for(lambda: stored_digests(dsn) == expected_digests(), timeout=60, what="the chain stored via Kafka")
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM deadletters WHERE code = 'certificate_overdraw'") == 1,
             timeout=30, what="the overdraw dead letter")
    reason = scalar(dsn, "SELECT reason FROM deadletters WHERE code = 'certificate_overdraw'")
    assert reason.startswith("S9:") and "T4" in reason


def as_principal(api_client: Any, **kw: Any) -> None:
    from api.deps import Principal, get_principal

    api_client.app.dependency_overrides[get_principal] = lambda: Principal(**kw)


def test_operator_sees_only_its_markets_and_producer_submits_only_as_itself(db_dsn: str, api_client: Any) -> None:
    store(db_dsn, sample_chain())
    as_principal(api_client, role="operator", name="op", markets=frozenset({"m1"}))
    assert api_client.get("/v1/certificates/T3").status_code == 404  # at m2
    assert api_client.get("/v1/certificates/T1").status_code == 200
    down = api_client.get("/v1/certificates/M1/trace", params={"direction": "down"}).json()
    assert {n["certificate_no"] for n in down["nodes"]} == {"M1", "S1", "S2", "T1", "T2"}  # not T3 (m2)
    assert all(e["to"] != "T3" for e in down["edges"])
    outside = record("T9", "handoff", holder="stall-9", role="vendor", quantity=1, parents=["T3"],
                     market_id="m2", stall_id="stall-9")
    assert api_client.post("/v1/certificates", json=outside).status_code == 403

    as_principal(api_client, role="producer", name="coop", holder_id="coop-1")
    assert api_client.get("/v1/certificates/O1").status_code == 200
    assert api_client.get("/v1/certificates/O2").status_code == 404  # someone else's
    # issue 5: a producer reads its own chains: from its own records, those records and where their lots went
    trace = api_client.get("/v1/certificates/O1/trace").json()
    assert {n["certificate_no"] for n in trace["nodes"]} == {"O1", "M1", "H1", "S1", "S2", "T1", "T2", "T3", "T4"}
    assert all(e["from"] != "O2" for e in trace["edges"])  # the other producer's lot merged into M1 stays hidden
    for suffix in ("trace", "verify", "epcis", "fsma.csv"):
        assert api_client.get(f"/v1/certificates/O1/{suffix}").status_code == 200, suffix
        assert api_client.get(f"/v1/certificates/M1/{suffix}").status_code == 404, suffix  # not its record
    fsma = list(csv.reader(io.StringIO(api_client.get("/v1/certificates/O1/fsma.csv").text)))
    assert not any("O2" in cell or "O3" in cell for row in fsma for cell in row)
    epcis = api_client.get("/v1/certificates/O1/epcis").json()
    assert_valid(epcis)
    assert ":O2" not in json.dumps(epcis) and ":O1" in json.dumps(epcis)
    failure = api_client.get(f"/v1/readings/{uuid.uuid4()}/recall-scope")
    assert failure.status_code == 403  # recall scope is for regulators and operators
    other = record("O7", "origin", holder="coop-2", role="producer", quantity=10)
    response = api_client.post("/v1/certificates", json=other)
    assert response.status_code == 403 and "own holder id" in response.json()["error"]["message"]


def test_a_producer_sees_neither_its_suppliers_nor_their_numbers(db_dsn: str, api_client: Any) -> None:
    store(db_dsn, sample_chain())
    edit_quantity_behind_the_trigger(db_dsn, "M1")
    as_principal(api_client, role="producer", name="wholesaler", holder_id="whs-1")
    up = api_client.get("/v1/certificates/S1/trace").json()
    assert {n["certificate_no"] for n in up["nodes"]} == {"S1", "T1", "T2"}  # not M1, O1, O2 upstream
    found = api_client.get("/v1/certificates/S1/verify").json()
    assert found["ok"] is False and found["first_altered"] is None
    assert [a["certificate_no"] for a in found["alterations"]] == [None]
    as_principal(api_client, role="regulator", name="reg")
    assert api_client.get("/v1/certificates/S1/verify").json()["first_altered"] == "M1"
