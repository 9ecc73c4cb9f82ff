"""Chain of custody (issue 10): only a lot's holder moves or corrects it; a stranger's record is a dead letter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers.chain_store import BatchResult, ChainStore
from schemas.certificate import Route, Submitter, SubmitterRole
from schemas.settings import Settings
from simulators.certificates import record
from storage.db import connect
from tests.helpers import publish, rows, scalar, wait_for

pytestmark = pytest.mark.integration

TOPIC = "rt.certificates.v1"
REGULATOR = Submitter(role=SubmitterRole.REGULATOR, name="district office", route=Route.HTTP)


def producer(holder: str) -> Submitter:
    return Submitter(role=SubmitterRole.PRODUCER, name=holder, route=Route.HTTP, holder_id=holder)


def operator(*markets: str) -> Submitter:
    return Submitter(role=SubmitterRole.OPERATOR, name=f"desk {markets[0]}", route=Route.HTTP, markets=markets)


def store(dsn: str, records: list[dict[str, Any]], by: Submitter) -> BatchResult:
    conn = connect(dsn)
    try:
        values = [(json.dumps(r, ensure_ascii=False).encode(), TOPIC) for r in records]
        result = ChainStore(Settings()).store(conn, values, [[by.header()]] * len(values))
        conn.commit()
        return result
    finally:
        conn.close()


def only_not_holder(result: BatchResult, number: str, *names: str) -> str:
    [dead] = result.dead
    assert dead.code == "certificate_not_holder" and dead.reason.startswith(f"{number}:")
    assert all(name in dead.reason for name in names), dead.reason
    assert result.accepted == 0
    return dead.reason


def numbers(dsn: str) -> set[str]:
    return {no for (no,) in rows(dsn, "SELECT certificate_no FROM certificates")}


def two_producers_and_two_markets(dsn: str) -> None:
    """coop-1's origin P1 and coop-2's P2; P1 handed into market A's entry lot EA; stall SA at A; EB and SB at B."""
    store(dsn, [record("P1", "origin", holder="coop-1", role="producer", quantity=500)], producer("coop-1"))
    store(dsn, [record("P2", "origin", holder="coop-2", role="producer", quantity=500)], producer("coop-2"))
    store(dsn, [record("EA", "split", holder="entry-A", role="market", quantity=200, parents=["P1"], market_id="A"),
                record("EB", "split", holder="entry-B", role="market", quantity=200, parents=["P2"], market_id="B")],
          REGULATOR)
    store(dsn, [record("SA", "split", holder="stall-a", role="vendor", quantity=50, parents=["EA"], market_id="A",
                       stall_id="a1")], operator("A"))
    store(dsn, [record("SB", "split", holder="stall-b", role="vendor", quantity=50, parents=["EB"], market_id="B",
                       stall_id="b1")], operator("B"))
    assert numbers(dsn) == {"P1", "P2", "EA", "EB", "SA", "SB"}


def test_a_producer_neither_corrects_nor_splits_another_holders_origin(db_dsn: str) -> None:
    two_producers_and_two_markets(db_dsn)
    stranger = record("P1-fix", "origin", holder="coop-2", role="producer", quantity=400, supersedes="P1")
    reason = only_not_holder(store(db_dsn, [stranger], producer("coop-2")), "P1-fix", "P1", "coop-1", "coop-2")
    assert "correct" in reason
    theft = record("X1", "split", holder="coop-2", role="producer", quantity=300, parents=["P1"])
    only_not_holder(store(db_dsn, [theft], producer("coop-2")), "X1", "P1 is held by coop-1")
    # the victim is untouched: no correction, nothing drawn; its holder corrects and splits it in full
    assert scalar(db_dsn, "SELECT count(*) FROM certificates WHERE supersedes = 'P1'") == 0
    own = store(db_dsn, [record("P1-v2", "origin", holder="coop-1", role="producer", quantity=500, supersedes="P1"),
                         record("H1", "handoff", holder="col-9", role="collector", quantity=300, parents=["P1"])],
                producer("coop-1"))
    assert own.accepted == 2 and not own.dead  # 300 of the 500 left: the stranger took nothing


def test_an_operator_neither_corrects_nor_splits_another_markets_lot(db_dsn: str) -> None:
    two_producers_and_two_markets(db_dsn)
    fix = record("SB-fix", "split", holder="stall-b", role="vendor", quantity=40, parents=["EB"], market_id="B",
                 stall_id="b1", supersedes="SB")
    only_not_holder(store(db_dsn, [fix], operator("A")), "SB-fix", "EB is held by entry-B at market B")
    into_own_stall = record("SA2", "split", holder="stall-a", role="vendor", quantity=150, parents=["EB"],
                            market_id="A", stall_id="a1")
    only_not_holder(store(db_dsn, [into_own_stall], operator("A")), "SA2", "EB", "market B", "desk A")
    assert scalar(db_dsn, "SELECT count(*) FROM certificates WHERE supersedes = 'SB'") == 0
    # B's own desk still has its full 150 left and may correct its stall record
    own = store(db_dsn, [record("SB2", "split", holder="stall-b", role="vendor", quantity=150, parents=["EB"],
                                market_id="B", stall_id="b2"), fix], operator("B"))
    assert own.accepted == 2 and not own.dead


def test_a_regulator_corrects_any_record(db_dsn: str) -> None:
    two_producers_and_two_markets(db_dsn)
    fix = record("SB-reg", "split", holder="stall-b", role="vendor", quantity=45, parents=["EB"], market_id="B",
                 stall_id="b1", supersedes="SB")
    result = store(db_dsn, [fix], REGULATOR)
    assert result.accepted == 1 and not result.dead
    stored = scalar(db_dsn, "SELECT submitter FROM certificates WHERE certificate_no = 'SB-reg'")
    assert stored == {"role": "regulator", "name": "district office", "route": "http"}
    assert scalar(db_dsn, "SELECT submitter->>'role' FROM certificates WHERE certificate_no = 'SA'") == "operator"


def test_custody_of_a_held_record_is_checked_when_its_parent_arrives(db_dsn: str) -> None:
    early = record("Y1", "split", holder="coop-2", role="producer", quantity=10, parents=["Q1"])
    assert store(db_dsn, [early], producer("coop-2")).held == 1
    arrived = store(db_dsn, [record("Q1", "origin", holder="coop-1", role="producer", quantity=50)],
                    producer("coop-1"))
    assert arrived.accepted == 1 and arrived.released == 1
    [dead] = arrived.dead
    assert dead.code == "certificate_not_holder" and dead.reason.startswith("Y1: Q1 is held by coop-1")
    assert numbers(db_dsn) == {"Q1"}


def test_cross_owner_submissions_over_http_are_dead_letters(settings: Settings, pipeline: Any,
                                                             api_client: Any) -> None:
    from tests.integration.test_chain import as_principal

    pipeline("chain", "deadletters", bridge=False)
    dsn = settings.database_url
    assert dsn
    as_principal(api_client, role="producer", name="coop 1", holder_id="coop-1")
    assert api_client.post("/v1/certificates", json=record("P1", "origin", holder="coop-1", role="producer",
                                                            quantity=500)).status_code == 202
    wait_for(lambda: numbers(dsn) == {"P1"}, timeout=60, what="P1 stored")
    as_principal(api_client, role="producer", name="coop 2", holder_id="coop-2")
    theft = record("X1", "split", holder="coop-2", role="producer", quantity=300, parents=["P1"])
    assert api_client.post("/v1/certificates", json=theft).status_code == 202
    as_principal(api_client, role="regulator", name="reg")
    wait_for(lambda: [d["code"] for d in api_client.get("/v1/deadletters").json()["items"]]
             == ["certificate_not_holder"], timeout=60, what="the not-holder dead letter")
    [dead] = api_client.get("/v1/deadletters").json()["items"]
    assert "P1 is held by coop-1" in dead["reason"] and "producer 'coop 2'" in dead["reason"]
    assert "via http" in dead["reason"] and numbers(dsn) == {"P1"}


def test_a_refused_submission_is_a_dead_letter_from_http(settings: Settings, pipeline: Any, api_client: Any) -> None:
    pipeline("deadletters", bridge=False)
    bad = {**record("B1", "origin", holder="coop-1", role="producer", quantity=5), "kind": "merge"}
    response = api_client.post("/v1/certificates", json=[bad])
    assert response.status_code == 422
    wait_for(lambda: api_client.get("/v1/deadletters", params={"source": "http"}).json()["items"], timeout=60,
             what="the HTTP dead letter")
    [dead] = api_client.get("/v1/deadletters", params={"source": "http"}).json()["items"]
    assert dead["code"] == "invalid_certificate" and dead["source_topic"] == "POST /v1/certificates"
    assert dead["reason"].startswith(response.json()["error"]["message"] + " (from regulator")
    assert json.loads(dead["raw_text"]) == [bad]


def entry(no: str, kind: str, *, parents: list[str], quantity: float, supersedes: str | None = None,
          market_id: str = "M07") -> bytes:
    rec = record(no, kind, holder=f"entry-{market_id}", role="market", quantity=quantity, parents=parents,
                 market_id=market_id, supersedes=supersedes)
    return json.dumps(rec, ensure_ascii=False).encode()


def test_entry_scanners_move_only_lots_delivered_to_their_market(settings: Settings, pipeline: Any,
                                                                  mqtt_broker: Any, api_client: Any) -> None:
    dsn = settings.database_url
    assert dsn
    store(dsn, [record("W1", "origin", holder="coop-1", role="producer", quantity=500),
                record("E99", "split", holder="entry-M99", role="market", quantity=100, parents=["W1"],
                       market_id="M99")], REGULATOR)
    pipeline("chain", "deadletters")
    gate = "rt/v1/markets/M07/entry/gate-1/certificates"
    publish(mqtt_broker.url, mqtt_broker.protocol, [
        (gate, entry("E07", "split", parents=["W1"], quantity=200)),  # in transit, arriving at M07: allowed
        (gate, entry("X07", "split", parents=["E99"], quantity=50)),  # M99's entry lot
        (gate, entry("E99-fix", "split", parents=["W1"], quantity=90, supersedes="E99")),  # M99's record
    ])
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM certificates") >= 3, timeout=60, what="E07 stored")
    # (counted by code: the shared test broker may hand this bridge other tests' leftover messages too)
    mine = "SELECT code, reason FROM deadletters WHERE code = 'certificate_not_holder'"
    wait_for(lambda: len(rows(dsn, mine)) >= 2, timeout=60, what="2 not-holder dead letters")
    found = sorted(rows(dsn, mine))
    assert [code for code, _ in found] == ["certificate_not_holder"] * 2
    assert found[0][1].startswith("E99-fix:") and "E99 is held by entry-M99 at market M99" in found[0][1]
    assert found[1][1].startswith("X07:") and "entry_scanner 'M07/gate-1'" in found[1][1]
    assert "via mqtt" in found[1][1]
    assert numbers(dsn) == {"W1", "E99", "E07"}
    assert scalar(dsn, "SELECT submitter FROM certificates WHERE certificate_no = 'E07'") == {
        "role": "entry_scanner", "name": "M07/gate-1", "route": "mqtt", "markets": ["M07"]}
