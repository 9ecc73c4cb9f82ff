"""Failures end to end: MQTT → flagger → failures and alerts; the workflow through the API; anomalies.

The flagger is driven two ways: through the real pipeline (MQTT → bridge →
Kafka → flagger), and by handing its ``handle`` Kafka records directly, with an
injected clock, where a test is about time (deadlines, silence, registry
versions) rather than transport.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from api.app import create_app
from api.deps import Principal, get_principal
from consumers.flagger import Flagger
from consumers.runner import KafkaSink
from domain import workflow
from schemas.envelope import reading_headers
from schemas.reading import Verdict
from schemas.settings import Settings
from simulators.faults import BadStripLot, make_lines
from storage import failures as failure_q
from storage.db import connect
from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: working hours


class Clock:
    """A settable clock shared by the flagger and the API under test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


def payload(c: float, t: float, device_result: str | None = None, **assay: Any) -> dict[str, Any]:
    p = reading_payload(signal={"c_line": c, "t_line": t})
    p["measured_at"] = (T0 - timedelta(minutes=10)).isoformat()
    p["assay"] = {**p["assay"], **assay}
    if device_result is None:
        p.pop("device_result")
    else:
        p["device_result"] = device_result
    return p


def record(
    p: dict[str, Any], market: str = "m1", station: str = "s1", device: str = "d1", offset: int = 0
) -> ConsumerRecord:
    headers = reading_headers(market, station, device, reading_topic(market, station, device), T0)
    return ConsumerRecord(
        "rt.readings.v1", 0, None, offset, 0, 0, station.encode(), json.dumps(p).encode(), headers, None, -1, -1, -1
    )


def run_batch(flagger: Flagger, dsn: str, records: list[ConsumerRecord]) -> list[uuid.UUID]:
    conn = connect(dsn)
    try:
        result = flagger.handle(conn, records)
        conn.commit()
        return result
    finally:
        conn.close()


def read_topic(settings: Settings, topic: str, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Every message of ``topic`` (no consumer group: assigned partitions from the start)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    try:
        parts = wait_for(lambda: consumer.partitions_for_topic(topic), what=f"partitions of {topic}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                found += [json.loads(m.value) for m in batch]
            if len(found) >= want:
                time.sleep(0.5)  # and nothing more arrives
                for batch in consumer.poll(timeout_ms=300).values():
                    found += [json.loads(m.value) for m in batch]
                break
        return found
    finally:
        consumer.close()


def kinds(dsn: str, market: str | None = None) -> list[str]:
    where, params = ("WHERE market_id = %s", [market]) if market else ("", [])
    return sorted(r[0] for r in rows(dsn, f"SELECT kind FROM failures {where}", params))


@pytest.fixture
def db_settings(db_dsn: str) -> Settings:
    """Settings for tests that need only the database (no Kafka, no MQTT)."""
    return Settings(database_url=db_dsn, api_auth=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(db_settings: Settings, clock: Clock) -> Iterator[Callable[[Principal], TestClient]]:
    """A TestClient factory acting as the given principal, over an app with the injected clock."""
    app = create_app(db_settings, clock=clock)
    with TestClient(app) as tc:

        def as_(principal: Principal) -> TestClient:
            app.dependency_overrides[get_principal] = lambda: principal
            return tc

        yield as_


OPERATOR = Principal(role="operator", name="op-m1", markets=frozenset({"m1"}))
OTHER_OPERATOR = Principal(role="operator", name="op-m9", markets=frozenset({"m9"}))
REGULATOR = Principal(role="regulator", name="reg")
PRODUCER = Principal(role="producer", name="coop", holder_id="coop-1")


# --- the real path ---


def test_mqtt_reading_raises_failures_alerts_and_api_answers(
    settings: Settings, pipeline: Any, api_client: TestClient
) -> None:
    pipeline("store", "flagger")
    positive = payload(1000.0, 500.0, "positive")
    mismatch = payload(1000.0, 990.0, "positive")  # server: negative
    invalid = payload(50.0, 900.0, "invalid")
    wrong_cutoff = payload(1000.0, 1200.0, "negative", cutoff_ratio=0.6)
    negative = payload(1000.0, 1200.0, "negative")
    market = f"mf{uuid.uuid4().hex[:8]}"  # its own market: other sessions may publish to the same broker
    topic = reading_topic(market)
    messages = [(topic, encode(p)) for p in (positive, mismatch, invalid, wrong_cutoff, negative)]
    publish(settings.mqtt_url or "", settings.mqtt_protocol, messages + messages[:2])  # two redelivered
    dsn = settings.database_url or ""
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM verdicts WHERE market_id = %s", [market]) == 5,
             what="5 verdicts")
    wait_for(lambda: len(kinds(dsn, market)) == 4, what="4 failures")
    assert kinds(dsn, market) == ["cutoff_mismatch", "invalid", "positive", "verdict_mismatch"]

    alerts = [a for a in read_topic(settings, settings.topic_alerts, want=4) if a["market_id"] == market]
    assert sorted(a["kind"] for a in alerts) == ["cutoff_mismatch", "invalid", "positive", "verdict_mismatch"]
    assert scalar(dsn, "SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL") == 0

    listed = api_client.get("/v1/failures", params={"kind": "positive", "market_id": market}).json()["items"]
    assert len(listed) == 1 and listed[0]["reading_id"] == positive["reading_id"]
    detail = api_client.get(f"/v1/failures/{listed[0]['failure_id']}").json()
    assert detail["state"] == "sale_suspended"
    assert [h["action"] for h in detail["history"]] == ["raised", "suspend_sale"]
    assert detail["certificate_no"] == "HGZ-320412-2026-000913"
    assert detail["verdict"]["server_result"] == "positive" and detail["verdict"]["device_result"] == "positive"
    assert detail["thresholds_used"]["r_pos"] == 0.8 and detail["thresholds_used"]["entry_ids"] == [1]
    wait_for(lambda: api_client.get(f"/v1/failures/{listed[0]['failure_id']}").json()["reading"], what="reading")
    devices = api_client.get("/v1/devices", params={"market_id": market}).json()["items"]
    assert devices[0]["device_id"] == "d1" and devices[0]["tests"] == 5 and devices[0]["invalid_rate"] == 0.2


# --- idempotency ---


def test_redelivered_batch_raises_nothing_twice(db_dsn: str, db_settings: Settings, clock: Clock) -> None:
    flagger = Flagger(db_settings, clock=clock)
    batch = [
        record(payload(1000.0, 100.0, "positive"), offset=1),
        record(payload(1000.0, 870.0, "suspicious"), offset=2),
    ]
    first = run_batch(flagger, db_dsn, batch)
    assert len(first) == 2
    assert run_batch(flagger, db_dsn, batch) == []
    assert run_batch(Flagger(db_settings, clock=clock), db_dsn, batch) == []  # a restarted flagger too
    assert scalar(db_dsn, "SELECT count(*) FROM failures") == 2
    assert scalar(db_dsn, "SELECT count(*) FROM alert_outbox") == 2
    assert scalar(db_dsn, "SELECT count(*) FROM failure_events") == 3  # positive: raised + suspend_sale
    assert scalar(db_dsn, "SELECT sum(n_tests) FROM pass_rate_market_hourly") == 2
    assert scalar(db_dsn, "SELECT tests FROM device_activity") == 2


def test_events_are_append_only(db_dsn: str, db_settings: Settings, clock: Clock) -> None:
    run_batch(Flagger(db_settings, clock=clock), db_dsn, [record(payload(1000.0, 100.0, "positive"))])
    conn = connect(db_dsn)
    try:
        with pytest.raises(Exception, match="append-only"), conn.cursor() as cur:
            cur.execute("UPDATE failure_events SET note = 'x'")
    finally:
        conn.close()


# --- the workflow through the API ---


def _one_failure(dsn: str, kind: str) -> str:
    return str(scalar(dsn, "SELECT failure_id FROM failures WHERE kind = %s", [kind]))


def _act(tc: TestClient, fid: str, action: str, **evidence: str) -> Any:
    note = evidence.pop("note", "done")
    return tc.post(f"/v1/failures/{fid}/actions", json={"action": action, "note": note, "evidence": evidence})


EVIDENCE = {"photo_ref": "photo-1", "lab_report_no": "LAB-7", "retest_reading_id": "r-2"}


def test_workflow_to_closure_and_every_forbidden_transition(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    run_batch(Flagger(db_settings, clock=clock), db_dsn, [record(payload(1000.0, 100.0, "positive"))])
    fid = _one_failure(db_dsn, "positive")
    path = [
        ("object", OPERATOR),
        ("lab_positive", REGULATOR),
        ("trace", OPERATOR),
        ("post", OPERATOR),
        ("report", OPERATOR),
        ("close", REGULATOR),
    ]
    every = {tr.action for tr in workflow.TRANSITIONS[workflow.Workflow.SCREEN]}
    for action, who in path:
        tc = client(REGULATOR)
        state = tc.get(f"/v1/failures/{fid}").json()["state"]
        legal = {
            tr.action for tr in workflow.TRANSITIONS[workflow.Workflow.SCREEN] if workflow.State(state) in tr.sources
        }
        for forbidden in sorted(every - legal):
            answer = _act(tc, fid, forbidden, **EVIDENCE)
            assert answer.status_code == 409, (state, forbidden, answer.text)
            body = answer.json()["error"]
            assert body["code"] == "transition_not_allowed"
            assert set(body["details"]["allowed"]) <= legal and body["details"]["state"] == state
        clock.advance(minutes=30)
        answer = _act(client(who), fid, action, **EVIDENCE)
        assert answer.status_code == 200, answer.text
    final = client(OPERATOR).get(f"/v1/failures/{fid}").json()
    assert final["state"] == "closed" and final["closed_at"] is not None and final["allowed_actions"] == []
    assert [h["action"] for h in final["history"]] == ["raised", "suspend_sale", *[a for a, _ in path]]
    assert final["history"][3]["evidence"] == EVIDENCE and final["history"][3]["actor"] == "reg"
    assert _act(client(REGULATOR), fid, "close").status_code == 409


def test_roles_scope_and_evidence(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    run_batch(Flagger(db_settings, clock=clock), db_dsn, [record(payload(1000.0, 100.0, "positive"))])
    fid = _one_failure(db_dsn, "positive")
    assert client(OTHER_OPERATOR).get(f"/v1/failures/{fid}").status_code == 404
    assert _act(client(OTHER_OPERATOR), fid, "object").status_code == 404
    assert client(OTHER_OPERATOR).get("/v1/failures").json()["items"] == []
    assert _act(client(PRODUCER), fid, "object").status_code == 403
    refused = _act(client(OPERATOR), fid, "commission_lab")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_not_allowed"
    missing = client(OPERATOR).post(f"/v1/failures/{fid}/actions", json={"action": "object"})
    assert missing.status_code == 422 and missing.json()["error"]["details"]["missing"] == ["note"]
    assert client(REGULATOR).get(f"/v1/failures/{uuid.uuid4()}").status_code == 404


def console_summaries(dsn: str, kind: str) -> list[str]:
    """The console's Chinese summaries of the failures of ``kind`` the flagger raised (api/web/failure_text.py)."""
    from api.web.console.labels import with_summaries

    conn = connect(dsn)
    try:
        listed = failure_q.list_failures(conn, failure_q.FailureFilter(kinds=[kind]), 100, None)
        with_summaries(conn, listed, "zh-CN")
    finally:
        conn.close()
    assert all(f["summary_text"] != f["summary"] for f in listed), [f["summary"] for f in listed]
    return [f["summary_text"] for f in listed]


def test_deadlines_with_an_injected_clock(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    flagger = Flagger(db_settings, clock=clock)
    run_batch(flagger, db_dsn, [record(payload(1000.0, 100.0, "positive"))])
    fid = _one_failure(db_dsn, "positive")
    tc = client(OPERATOR)
    clock.advance(hours=3)
    assert _act(tc, fid, "destroy", **EVIDENCE).status_code == 409  # the vendor may still object
    assert "object" in tc.get(f"/v1/failures/{fid}").json()["allowed_actions"]
    clock.advance(hours=1, seconds=1)  # objection window over
    late = _act(tc, fid, "object")
    assert late.status_code == 409 and late.json()["error"]["details"]["allowed"] == ["destroy"]
    assert tc.get("/v1/failures", params={"overdue": "true"}).json()["items"] == []
    clock.advance(hours=25)  # disposal overdue
    overdue = tc.get("/v1/failures", params={"overdue": "true"}).json()["items"]
    assert [f["failure_id"] for f in overdue] == [fid] and overdue[0]["overdue"] is True
    conn = connect(db_dsn)
    try:
        raised = flagger.raise_failures(conn, flagger.overdue(conn, clock()))
        raised += flagger.raise_failures(conn, flagger.overdue(conn, clock()))  # once only
        conn.commit()
    finally:
        conn.close()
    assert len(raised) == 1
    row = rows(db_dsn, "SELECT kind, parent_failure_id::text, market_id FROM failures WHERE kind = 'overdue'")
    assert row == [("overdue", fid, "m1")]
    (text,) = console_summaries(db_dsn, "overdue")
    assert text.startswith(f"阳性问题 {fid[:8]} 在「暂停销售」环节超时（期限 "), text
    assert _act(tc, fid, "destroy", **EVIDENCE).status_code == 200
    assert tc.get("/v1/failures", params={"overdue": "true", "kind": "positive"}).json()["items"] == []


# --- thresholds: versioned registry ---


def test_registry_versions_apply_by_measured_at(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    version = {
        "scope": "strip_lot",
        "analyte": "chlorpyrifos",
        "strip_lot": "CG2611-07",
        "valid_from": T0.isoformat(),
        "params": {"r_pos": 0.5},
        "note": "lot insert",
    }
    assert client(OPERATOR).post("/v1/thresholds", json=version).status_code == 403
    tc = client(REGULATOR)
    assert tc.post("/v1/thresholds", json={**version, "params": {"r_pos": 0.99}}).status_code == 422
    assert tc.post("/v1/thresholds", json=version).status_code == 201
    assert tc.post("/v1/thresholds", json=version).status_code == 409
    before = payload(1000.0, 600.0, "positive")  # T/C 0.6, measured before T0: old r_pos 0.8 → positive
    after = payload(1000.0, 600.0, "positive")
    after["measured_at"] = (T0 + timedelta(minutes=1)).isoformat()  # new r_pos 0.5 → suspicious
    run_batch(Flagger(db_settings, clock=clock), db_dsn, [record(before), record(after, offset=1)])
    got = dict(rows(db_dsn, "SELECT reading_id::text, server_result FROM verdicts"))
    assert got == {before["reading_id"]: "positive", after["reading_id"]: "suspicious"}
    used = scalar(
        db_dsn,
        "SELECT s.thresholds FROM verdicts v JOIN threshold_snapshots s ON s.digest = v.thresholds_digest "
        "WHERE v.reading_id = %s",
        [after["reading_id"]],
    )
    assert used["r_pos"] == 0.5 and used["layers"] == ["project", "strip_lot"]
    resolved = tc.get(
        "/v1/thresholds/resolve", params={"analyte": "chlorpyrifos", "strip_lot": "CG2611-07", "at": T0.isoformat()}
    ).json()
    assert resolved["r_pos"] == 0.5
    assert any(a["code"] == "malachite_green" for a in tc.get("/v1/analytes").json()["items"])


# --- anomalies ---


def test_bad_strip_lot_and_silent_reader_are_flagged(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    import random

    rng = random.Random(3)
    bad = BadStripLot("CG-BAD", starts_after=300, invalid_rate=0.4, seed=5)
    flagger = Flagger(db_settings, clock=clock)
    for start in range(0, 400, 50):
        batch = []
        for i in range(start, start + 50):
            verdict = Verdict.INVALID if bad.is_invalid(i, 0.01) else Verdict.NEGATIVE
            c, t = make_lines(verdict, rng)
            p = payload(c, t, verdict.value, strip_lot="CG-BAD")
            p["measured_at"] = (T0 - timedelta(hours=10) + timedelta(minutes=i)).isoformat()
            batch.append(record(p, device=f"d{i % 7}", offset=i))
        run_batch(flagger, db_dsn, batch)
    lots = rows(db_dsn, "SELECT subject, analyte, strip_lot FROM failures WHERE kind = 'invalid_rate_strip_lot'")
    assert lots == [("chlorpyrifos/CG-BAD", "chlorpyrifos", "CG-BAD")]  # once, though it stays bad
    first_bad = scalar(
        db_dsn,
        "SELECT min(measured_at) FROM failures WHERE kind = 'invalid' AND measured_at >= %s",
        [T0 - timedelta(hours=10) + timedelta(minutes=300)],
    )
    assert first_bad is not None

    clock.advance(minutes=59)
    conn = connect(db_dsn)
    try:
        assert flagger.silent(conn, clock()) == []
        clock.advance(minutes=2)
        silent = flagger.raise_failures(conn, flagger.silent(conn, clock()))
        conn.commit()
    finally:
        conn.close()
    assert len(silent) == 7  # every reader of the test went quiet at T0
    (lot,) = console_summaries(db_dsn, "invalid_rate_strip_lot")
    assert lot.startswith("试纸批次 毒死蜱 / CG-BAD：最近 50 次检测无效率 "), lot
    assert all(re.fullmatch(r"读卡器 d\d 已静默 1\.0 个工作小时（最后上报 [-\d]+ [:\d]+）", s)
               for s in console_summaries(db_dsn, "silent_device"))
    assert client(OPERATOR).get("/v1/failures", params={"kind": "silent_device"}).json()["items"][0]["state"] == "open"


def test_alerts_left_by_a_crash_are_published_once(settings: Settings, clock: Clock) -> None:
    dsn = settings.database_url or ""
    crashed = Flagger(settings, clock=clock)
    run_batch(crashed, dsn, [record(payload(1000.0, 100.0, "positive")), record(payload(50.0, 0.0), offset=1)])
    # the process dies here: committed, never published
    restarted = Flagger(settings, clock=clock)
    new = run_batch(restarted, dsn, [record(payload(1000.0, 870.0, "suspicious"), offset=2)])
    sink = KafkaSink(settings, "test-alerts")  # the loop's one producer, as the runner hands it over
    restarted.after_commit(new, sink)
    restarted.after_commit([], sink)  # nothing pending any more
    restarted.close()
    sink.close()
    alerts = read_topic(settings, settings.topic_alerts, want=3)
    assert sorted(a["kind"] for a in alerts) == ["invalid", "positive", "suspicious"]
    assert len({a["failure_id"] for a in alerts}) == 3
    assert scalar(dsn, "SELECT count(*) FROM alert_outbox WHERE sent_at IS NULL") == 0
