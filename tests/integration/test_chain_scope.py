"""Chain reads stay in their scope (issue 10): an operator never meets another market's certificate numbers;
recall totals count what reached a holder; records held too long are listed and raise a review failure."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from consumers.chain_store import ChainStore
from schemas.common import utc_now
from schemas.settings import Settings
from simulators.certificates import record
from storage.db import connect
from tests.helpers import rows, scalar, wait_for
from tests.integration.test_chain import as_principal, insert_reading, store

pytestmark = pytest.mark.integration

#: every number of market B's records contains this, so one search of a response finds any leak
OUTSIDE = "BXQ"


def two_market_chain(dsn: str) -> dict[str, str]:
    """O1 -> W1 (a wholesaler, no market) -> A1 (stall at A) and BXQ1 (stall at B) -> A2 (back at A);
    W1 corrected by BXQFIX (located at B); readings at A: one on A1, one naming only B's lot code."""
    store(dsn, [
        record("O1", "origin", holder="coop-1", role="producer", quantity=500, lot_code="L1"),
        record("W1", "handoff", holder="whs-1", role="wholesaler", quantity=500, lot_code="L1", parents=["O1"]),
        record("A1", "split", holder="stall-a", role="vendor", quantity=200, lot_code="LA", parents=["W1"],
               market_id="A", stall_id="a1"),
        record(f"{OUTSIDE}1", "split", holder="stall-b", role="vendor", quantity=250, lot_code="LB",
               parents=["W1"], market_id="B", stall_id="b1"),
        record("A2", "handoff", holder="stall-a2", role="vendor", quantity=250, lot_code="LA2",
               parents=[f"{OUTSIDE}1"], market_id="A", stall_id="a2"),
        record(f"{OUTSIDE}FIX", "handoff", holder="whs-1", role="wholesaler", quantity=500, lot_code="L1",
               parents=["O1"], market_id="B", supersedes="W1"),
    ])
    return {"on_a1": insert_reading(dsn, "A1", "LA", "A", "positive"),
            "b_lot": insert_reading(dsn, None, "LB", "A", "positive")}


def test_an_operator_never_meets_another_markets_numbers(db_dsn: str, api_client: Any) -> None:
    readings = two_market_chain(db_dsn)
    paths = [f"/v1/certificates/{no}{suffix}" for no in ("O1", "W1", "A1", "A2")
             for suffix in ("", "/trace", "/trace?direction=up", "/verify", "/epcis", "/fsma.csv")]
    paths += [f"/v1/readings/{rid}/recall-scope" for rid in readings.values()]

    as_principal(api_client, role="regulator", name="reg")  # the numbers are there to be leaked
    w1 = api_client.get("/v1/certificates/W1").json()
    assert w1["children"] == ["A1", f"{OUTSIDE}1"] and w1["superseded_by"] == f"{OUTSIDE}FIX"
    assert sum(OUTSIDE in api_client.get(p).text for p in paths) >= 10

    as_principal(api_client, role="operator", name="desk A", markets=frozenset({"A"}))
    for path in paths:
        response = api_client.get(path)
        assert response.status_code == 200, path
        assert OUTSIDE not in response.text, path
    w1 = api_client.get("/v1/certificates/W1").json()
    assert w1["children"] == ["A1"] and w1["children_count"] == 1 and w1["children_outside_scope"] == 1
    assert w1["superseded_by"] is None and w1["superseded"] is True and w1["submitter"] is None
    epcis = json.dumps(api_client.get("/v1/certificates/A2/epcis").json())
    assert ":A2" in epcis
    by_lot = api_client.get(f"/v1/readings/{readings['b_lot']}/recall-scope").json()
    assert by_lot["start"] == [] and by_lot["lots"] == []  # B's lot is not the operator's to start from
    scope = api_client.get(f"/v1/readings/{readings['on_a1']}/recall-scope").json()
    assert scope["start"] == ["A1"] and scope["origins"] == ["O1"]
    assert {lot["certificate_no"] for lot in scope["lots"]} == {"O1", "W1", "A1", "A2"}
    assert api_client.get(f"/v1/certificates/{OUTSIDE}1").status_code == 404


def test_a_holder_total_is_what_reached_it_not_its_lots_summed(db_dsn: str, api_client: Any) -> None:
    store(db_dsn, [
        record("O1", "origin", holder="coop-1", role="producer", quantity=500, lot_code="L1"),
        record("H1", "handoff", holder="col-1", role="collector", quantity=500, lot_code="L1", parents=["O1"]),
        record("S1", "split", holder="col-1", role="collector", quantity=200, lot_code="C1", parents=["H1"]),
        record("S2", "split", holder="col-1", role="collector", quantity=250, lot_code="C2", parents=["H1"]),
        record("M1", "merge", holder="col-1", role="collector", quantity=300, lot_code="C3",
               parents=[("S2", 100), ("O2", 200)]),
        record("O2", "origin", holder="coop-2", role="producer", quantity=200, lot_code="L2"),
        record("T1", "split", holder="stall-1", role="vendor", quantity=90, unit="jin", lot_code="T1",
               parents=["S1"], market_id="A", stall_id="st-1"),
    ])
    failed = insert_reading(db_dsn, "T1", "T1", "A", "positive")
    scope = api_client.get(f"/v1/readings/{failed}/recall-scope").json()
    totals = {h["holder_id"]: h["quantity"] for h in scope["holders"]}
    # col-1 received 500 kg from coop-1 and, merged in, 200 kg from coop-2 (whose own lot is not downstream of O1);
    # its splits and the 100 kg of its own it merged add nothing: 700, where summing its lots would say 1,250
    assert totals == {"coop-1": {"kg": 500}, "col-1": {"kg": 700}, "stall-1": {"jin": 90}}
    assert [s["quantity"] for s in scope["stalls"]] == [{"jin": 90}]


def test_held_records_are_listed_and_one_held_too_long_raises_a_review_failure(
    settings: Settings, pipeline: Any, api_client: Any
) -> None:
    dsn = settings.database_url
    assert dsn
    store(dsn, [record("C1", "split", holder="w", role="wholesaler", quantity=5, parents=["P0"]),
                record("C2", "split", holder="w", role="wholesaler", quantity=1, parents=["C1"], market_id="m1")])
    listed = api_client.get("/v1/certificates", params={"state": "held", "limit": 1})
    assert listed.status_code == 200
    page = listed.json()
    [first] = page["items"]
    assert first["certificate_no"] == "C1" and first["waits_for"] == ["P0"] and first["waits_on_held"] == []
    assert first["age_s"] >= 0 and page["next_cursor"]
    [second] = api_client.get("/v1/certificates", params={"state": "held", "cursor": page["next_cursor"]}
                              ).json()["items"]
    assert second["certificate_no"] == "C2" and second["waits_on_held"] == ["C1"]
    as_principal(api_client, role="operator", name="op", markets=frozenset({"m1"}))
    assert api_client.get("/v1/certificates", params={"state": "held"}).status_code == 403
    api_client.app.dependency_overrides.clear()

    # a day later by the consumer's clock: both have waited too long; a second review raises nothing twice
    conn = connect(dsn)
    later = ChainStore(settings, clock=lambda: utc_now() + timedelta(hours=25))
    assert later.tick(conn).dead == [] and conn.commit() is None
    later.tick(conn)
    conn.commit()
    assert ChainStore(settings).tick(conn).accepted == 0  # now: nothing is 24 h old yet
    conn.commit()
    conn.close()
    found = rows(dsn, "SELECT subject, kind, state, market_id FROM failures ORDER BY subject")
    assert found == [("C1", "certificate_held", "open", None), ("C2", "certificate_held", "open", "m1")]
    listed_failures = api_client.get("/v1/failures", params={"kind": "certificate_held"}).json()["items"]
    assert {f["certificate_no"] for f in listed_failures} == {"C1", "C2"}
    assert "waiting for P0" in next(f["summary"] for f in listed_failures if f["certificate_no"] == "C1")


def test_the_chain_consumer_reviews_held_records_on_its_idle_tick(settings: Settings, pipeline: Any) -> None:
    dsn = settings.database_url
    assert dsn
    store(dsn, [record("C9", "split", holder="w", role="wholesaler", quantity=5, parents=["P9"])])
    pipeline("chain", bridge=False, settings_override=settings.with_overrides(chain_held_review_after_s=0.5))
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM failures WHERE kind = 'certificate_held'") == 1,
             timeout=30, what="the review failure")
    assert scalar(dsn, "SELECT subject FROM failures") == "C9"
