"""Scoped API access: tokens, roles, markets, rate limits and the audit log, through the real app.

The matrix test fills a database through the real pipeline (MQTT -> bridge ->
Kafka -> consumers) and the certificate API, then asks every endpoint as each
role: a regulator sees everything, an operator only its markets (anything else
404), a producer only its own certificates.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg2
import pytest
from fastapi.testclient import TestClient
from kafka.consumer.fetcher import ConsumerRecord

from api.app import create_app
from consumers.flagger import Flagger
from schemas.common import utc_now
from schemas.envelope import reading_headers
from schemas.settings import Settings
from storage.db import connect
from storage.tokens import issue_token
from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration

PUBLIC = {"/healthz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["code"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture
def auth_settings(settings: Settings) -> Settings:
    return settings.with_overrides(api_auth=True)


@pytest.fixture
def client(auth_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(auth_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def issue(db_dsn: str) -> Callable[..., str]:
    """Issue a token straight into the registry (as `rapidtrace token issue` does); returns the secret."""

    def make(role: str, **kwargs: Any) -> str:
        conn = connect(db_dsn)
        try:
            issued = issue_token(conn, name=kwargs.pop("name", f"test {role}"), role=role, actor="test", **kwargs)
            conn.commit()
        finally:
            conn.close()
        return issued.token

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- tokens


def _operations(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document, path parameters filled with plausible values."""
    found = []
    for path, methods in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if path in PUBLIC:
            continue
        concrete = path
        for part in path.split("{")[1:]:
            name = part.split("}")[0]
            value = str(uuid.uuid4()) if name in ("failure_id", "reading_id") else "x1"
            concrete = concrete.replace("{" + name + "}", value)
        found += [(method.upper(), concrete) for method in methods]
    return found


def test_every_endpoint_answers_401_without_a_valid_token(client: TestClient, issue: Callable[..., str]) -> None:
    admin = issue("regulator", name="admin")
    revoked = issue("regulator", name="to revoke")
    listed = client.get("/v1/admin/tokens", headers=bearer(admin)).json()["items"]
    victim = next(t["token_id"] for t in listed if t["name"] == "to revoke")
    assert client.post(f"/v1/admin/tokens/{victim}/revoke", headers=bearer(admin)).status_code == 200
    bad_headers: list[dict[str, str]] = [
        {}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": admin},
        bearer("rtk_" + "A" * 43), bearer("' OR 1=1 --"), bearer("x" * 5000), bearer(revoked),
    ]
    operations = _operations(client)
    assert len(operations) >= 15
    for method, path in operations:
        for headers in bad_headers:
            response = client.request(method, path, headers=headers, json={})
            err = assert_error(response, 401)
            assert err["code"] == "unauthorized", (method, path, err)
            assert response.headers.get("www-authenticate") == "Bearer"
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/v1/readings", headers=bearer(admin)).status_code == 200


def test_expired_token_is_refused(client: TestClient, issue: Callable[..., str]) -> None:
    token = issue("regulator", expires_at=utc_now() - timedelta(seconds=1))
    assert_error(client.get("/v1/readings", headers=bearer(token)), 401)
    fresh = issue("regulator", expires_at=utc_now() + timedelta(hours=1))
    assert client.get("/v1/readings", headers=bearer(fresh)).status_code == 200


def test_rate_limit_is_per_token(client: TestClient, issue: Callable[..., str]) -> None:
    slow = issue("regulator", rate_per_minute=6)  # bucket of 1 request, refilled every 10 s
    other = issue("regulator")
    assert client.get("/v1/readings", headers=bearer(slow)).status_code == 200
    err = assert_error(client.get("/v1/readings", headers=bearer(slow)), 429)
    assert err["code"] == "rate_limited" and err["details"]["retry_after_s"] >= 1
    assert client.get("/v1/readings", headers=bearer(other)).status_code == 200


def test_admin_is_for_regulators_only(client: TestClient, issue: Callable[..., str]) -> None:
    for token in (issue("operator", markets=["m1"]), issue("producer", holder_id="coop-a")):
        for method, path in (("GET", "/v1/admin/tokens"), ("POST", "/v1/admin/tokens"),
                             ("GET", "/v1/admin/devices"), ("POST", "/v1/admin/devices"),
                             ("POST", "/v1/admin/devices/d1/revoke"), ("GET", "/v1/admin/audit"),
                             ("POST", "/v1/admin/tokens/tok_x/revoke")):
            body = {"name": "x", "role": "regulator"} if path == "/v1/admin/tokens" else {
                "market_id": "m1", "station_id": "s1", "device_id": "d9"}
            assert_error(client.request(method, path, headers=bearer(token), json=body), 403)


def test_tokens_issued_through_the_api_work_and_are_audited(client: TestClient, issue: Callable[..., str],
                                                            db_dsn: str) -> None:
    admin = bearer(issue("regulator", name="root"))
    made = client.post("/v1/admin/tokens", headers=admin,
                       json={"name": "desk 7", "role": "operator", "markets": ["m7", "m8"]})
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["token_id"]
    assert token.startswith("rtk_") and made.json()["markets"] == ["m7", "m8"]
    assert scalar(db_dsn, "SELECT count(*) FROM api_tokens WHERE token_sha256 = sha256(%s::bytea)",
                  [token.encode()]) == 1
    assert scalar(db_dsn, "SELECT count(*) FROM api_tokens WHERE token_id = %s AND "
                  "position(%s in encode(token_sha256, 'escape')) > 0", [token_id, token]) == 0
    assert client.get("/v1/readings", headers=bearer(token)).status_code == 200
    listed = client.get("/v1/admin/tokens", headers=admin).json()["items"]
    assert all("token" not in t and "token_sha256" not in t for t in listed)

    for bad in ({"name": "x", "role": "operator"}, {"name": "x", "role": "producer"},
                {"name": "x", "role": "regulator", "markets": ["m1"]}, {"name": "x", "role": "god"},
                {"name": "x", "role": "operator", "markets": ["m/1"]}, {"name": "", "role": "regulator"}):
        assert_error(client.post("/v1/admin/tokens", headers=admin, json=bad), 422)

    assert client.post(f"/v1/admin/tokens/{token_id}/revoke", headers=admin).status_code == 200
    assert_error(client.get("/v1/readings", headers=bearer(token)), 401)
    assert_error(client.post("/v1/admin/tokens/tok_nope/revoke", headers=admin), 404)

    audit = client.get("/v1/admin/audit", headers=admin).json()["items"]
    actions = [(e["action"], e["target"]) for e in audit]
    assert ("token.revoke", f"token:{token_id}") in actions and ("token.issue", f"token:{token_id}") in actions
    assert all(e["actor"].startswith("root (tok_") for e in audit if e["target"] == f"token:{token_id}")


def test_device_registry_api_writes_mosquitto_files(issue: Callable[..., str], auth_settings: Settings,
                                                    tmp_path: Any) -> None:
    admin = bearer(issue("regulator"))
    with TestClient(create_app(auth_settings)) as first:  # no RT_MQTT_*_FILE: the registry alone
        made = first.post("/v1/admin/devices", headers=admin,
                          json={"market_id": "m1", "station_id": "s1", "device_id": "r-001"})
        assert made.status_code == 201, made.text
        assert made.json()["topic"] == "rt/v1/markets/m1/stations/s1/devices/r-001/readings"
        assert made.json()["mosquitto_files"]["status"] == "not_configured"
        assert_error(first.post("/v1/admin/devices", headers=admin,
                                json={"market_id": "m1", "station_id": "s1", "device_id": "r-001"}), 409)
        assert_error(first.post("/v1/admin/devices", headers=admin,
                                json={"market_id": "m1", "station_id": "s1", "device_id": "r/#"}), 422)

    files = {"mqtt_password_file": tmp_path / "passwd", "mqtt_acl_file": tmp_path / "acl"}
    with TestClient(create_app(auth_settings.with_overrides(**files))) as second:
        rotated = second.post("/v1/admin/devices/r-001/rotate", headers=admin)
        assert rotated.status_code == 200 and rotated.json()["mosquitto_files"]["status"] == "written"
        assert rotated.json()["password"] != made.json()["password"]
        assert (tmp_path / "passwd").read_text().startswith("r-001:$7$101$")
        assert "topic write rt/v1/markets/m1/stations/s1/devices/r-001/readings" in (tmp_path / "acl").read_text()
        assert (tmp_path / "passwd").stat().st_mode & 0o777 == 0o640
        listed = second.get("/v1/admin/devices", headers=admin).json()["items"]
        assert [d["device_id"] for d in listed] == ["r-001"] and "password" not in listed[0]
        revoked = second.post("/v1/admin/devices/r-001/revoke", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        assert (tmp_path / "passwd").read_text() == ""
        assert second.get("/v1/admin/devices", headers=admin).json()["items"] == []
        assert len(second.get("/v1/admin/devices", headers=admin,
                              params={"include_revoked": True}).json()["items"]) == 1
        assert_error(second.post("/v1/admin/devices/nope/revoke", headers=admin), 404)
        actions = [e["action"] for e in second.get("/v1/admin/audit", headers=admin).json()["items"]]
    assert actions[:3] == ["device.revoke", "device.rotate", "device.add"]


def test_audit_log_is_append_only(db_dsn: str) -> None:
    conn = connect(db_dsn)
    try:
        from storage.audit import record_audit

        record_audit(conn, "someone", "test.write", "thing:1", {"n": 1})
        conn.commit()
        for statement in ("UPDATE audit_log SET actor = 'other'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg2.Error, match="append-only"), conn.cursor() as cur:
                cur.execute(statement)
            conn.rollback()
        assert scalar(db_dsn, "SELECT actor FROM audit_log WHERE action = 'test.write'") == "someone"
    finally:
        conn.close()


# ---------------------------------------------------------------- the matrix


def certificate(number: str, holder: str, market: str | None = None) -> dict[str, Any]:
    return {
        "schema": "rt.certificate/1", "certificate_no": number, "kind": "origin",
        "issued_at": "2026-11-27T17:40:00+08:00", "product": {"name": "韭菜", "category": "vegetable"},
        "quantity": {"value": 500, "unit": "kg"}, "lot_code": f"L-{number}",
        "holder": {"id": holder, "name": holder, "role": "producer"},
        "origin": {"region_code": "320412", "place": "village"}, "commitment_basis": ["self_test"],
        "location": {"market_id": market, "stall_id": None}, "parents": [],
    }


@pytest.fixture
def world(settings: Settings, pipeline: Callable[..., Any], mqtt_broker: Any, client: TestClient,
          issue: Callable[..., str]) -> dict[str, Any]:
    """Readings, failures, devices, dead letters and certificates in two markets, via the real pipeline."""
    pipeline("store", "deadletters", "flagger", "chain")
    ids: dict[str, Any] = {}
    messages = []
    for market, device in (("m1", "d1"), ("m2", "d2")):
        ok, bad = reading_payload(), reading_payload(signal={"c_line": 1500.0, "t_line": 300.0},
                                                     device_result="positive")
        ids[f"reading_{market}"] = bad["reading_id"]
        messages += [(reading_topic(market, "s1", device), encode(p)) for p in (ok, bad)]
    messages.append((reading_topic("m2", "s1", "d2"), b"{not json"))
    publish(mqtt_broker.url, mqtt_broker.protocol, messages)
    regulator = issue("regulator")
    for number, holder in (("HGZ-A-1", "coop-a"), ("HGZ-B-1", "coop-b")):
        sent = client.post("/v1/certificates", headers=bearer(regulator), json=certificate(number, holder))
        assert sent.status_code == 202, sent.text
    dsn = settings.database_url or ""
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM readings") == 4, what="4 readings")
    wait_for(lambda: scalar(dsn, "SELECT count(DISTINCT market_id) FROM failures") == 2, what="failures in 2 markets")
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM deadletters") >= 1, what="a dead letter")
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM certificates") == 2, timeout=60, what="2 certificates")
    for market in ("m1", "m2"):
        ids[f"failure_{market}"] = str(scalar(dsn, "SELECT failure_id FROM failures WHERE market_id = %s "
                                                   "ORDER BY raised_at LIMIT 1", [market]))
    ids["tokens"] = {"regulator": regulator, "operator": issue("operator", markets=["m1"]),
                     "producer": issue("producer", holder_id="coop-a")}
    return ids


def _markets(client: TestClient, token: str, path: str, **params: Any) -> set[str] | int:
    response = client.get(path, headers=bearer(token), params=params)
    if response.status_code != 200:
        assert_error(response, response.status_code)
        return response.status_code
    return {item.get("market_id", item.get("group")) for item in response.json()["items"]}


def test_every_role_sees_exactly_its_scope(client: TestClient, world: dict[str, Any]) -> None:
    tok = world["tokens"]
    stats = {"since": (utc_now() - timedelta(days=3)).isoformat(), "until": (utc_now() + timedelta(days=1)).isoformat()}
    lists = {"/v1/readings": {}, "/v1/failures": {}, "/v1/devices": {}, "/v1/stats/pass-rate": stats}
    # lists: which markets each role sees (a status code where it may not list at all)
    expected = {"regulator": {"m1", "m2"}, "operator": {"m1"}}
    problems = []
    for path, params in lists.items():
        for role, markets in expected.items():
            got = _markets(client, tok[role], path, **params)
            if got != markets:
                problems.append(f"{role} GET {path}: {got}, expected {markets}")
        producer = _markets(client, tok["producer"], path, **params)
        if producer not in (set(), 403):
            problems.append(f"producer GET {path}: {producer}, expected nothing")
        outside = _markets(client, tok["operator"], path, market_id="m2", **params)
        if outside != set():
            problems.append(f"operator GET {path}?market_id=m2: {outside}")

    # single resources: status per role (a role refused outright may get 403: that leaks no id)
    hidden = (403, 404)
    items: dict[str, dict[str, int | tuple[int, ...]]] = {
        f"/v1/readings/{world['reading_m1']}": {"regulator": 200, "operator": 200, "producer": hidden},
        f"/v1/readings/{world['reading_m2']}": {"regulator": 200, "operator": 404, "producer": hidden},
        f"/v1/failures/{world['failure_m1']}": {"regulator": 200, "operator": 200, "producer": hidden},
        f"/v1/failures/{world['failure_m2']}": {"regulator": 200, "operator": 404, "producer": hidden},
        f"/v1/failures/{world['failure_m2']}/recall-scope": {"operator": 404, "producer": hidden},
        "/v1/certificates/HGZ-A-1": {"regulator": 200, "producer": 200},
        "/v1/certificates/HGZ-B-1": {"regulator": 200, "producer": 404},
        # issue 5: a producer "reads its own chains"
        "/v1/certificates/HGZ-A-1/trace": {"regulator": 200, "producer": 200},
        "/v1/certificates/HGZ-B-1/trace": {"regulator": 200, "producer": hidden},
        "/v1/deadletters": {"regulator": 200, "operator": 403, "producer": 403},
        "/v1/admin/audit": {"regulator": 200, "operator": 403, "producer": 403},
    }
    for path, by_role in items.items():
        for role, status in by_role.items():
            allowed = status if isinstance(status, tuple) else (status,)
            response = client.get(path, headers=bearer(tok[role]))
            if response.status_code not in allowed:
                problems.append(f"{role} GET {path}: {response.status_code}, expected {status}")
            elif response.status_code >= 400:
                assert_error(response, response.status_code)

    # writes: acting outside one's scope
    action = {"action": "suspend_sale", "note": "test"}
    writes = [
        ("operator", f"/v1/failures/{world['failure_m2']}/actions", action, 404),
        ("producer", f"/v1/failures/{world['failure_m1']}/actions", action, 403),
        ("producer", "/v1/certificates", certificate("HGZ-B-2", "coop-b"), 403),
        ("producer", "/v1/certificates", certificate("HGZ-A-2", "coop-a"), 202),
        ("operator", "/v1/certificates", certificate("HGZ-C-1", "coop-c", market="m2"), 403),
    ]
    for role, path, body, status in writes:
        response = client.post(path, headers=bearer(tok[role]), json=body)
        if response.status_code != status:
            problems.append(f"{role} POST {path}: {response.status_code}, expected {status}: {response.text[:200]}")
    # a producer reads its own chain (and what became of its lot), not another holder's
    for suffix in ("verify", "epcis", "fsma.csv"):
        for number, allowed in (("HGZ-A-1", (200,)), ("HGZ-B-1", hidden)):
            response = client.get(f"/v1/certificates/{number}/{suffix}", headers=bearer(tok["producer"]))
            if response.status_code not in allowed:
                problems.append(f"producer GET {number}/{suffix}: {response.status_code}, expected {allowed}")
    nodes = client.get("/v1/certificates/HGZ-A-1/trace", headers=bearer(tok["producer"])).json().get("nodes", [])
    if [n["certificate_no"] for n in nodes] != ["HGZ-A-1"]:
        problems.append(f"producer trace of HGZ-A-1: {nodes}")
    assert problems == [], "\n".join(problems)


def test_every_api_write_is_audited(client: TestClient, issue: Callable[..., str], db_dsn: str,
                                    settings: Settings) -> None:
    """Issue 5: every write through the API is in the audit log (actor, action, target, time)."""
    producer = issue("producer", holder_id="coop-a", name="coop a")
    regulator = issue("regulator", name="desk")
    before = scalar(db_dsn, "SELECT count(*) FROM audit_log")
    sent = client.post("/v1/certificates", headers=bearer(producer), json=certificate("HGZ-AUD-1", "coop-a"))
    assert sent.status_code == 202, sent.text
    batch = client.post("/v1/certificates", headers=bearer(regulator),
                        json=[certificate("HGZ-AUD-2", "coop-b"), certificate("HGZ-AUD-3", "coop-c")])
    assert batch.status_code == 202, batch.text
    refused = client.post("/v1/certificates", headers=bearer(producer), json=certificate("HGZ-AUD-4", "coop-b"))
    assert_error(refused, 403)
    version = {"scope": "analyte", "analyte": "chlorpyrifos", "params": {"r_pos": 0.5}}
    added = client.post("/v1/thresholds", headers=bearer(regulator), json=version)
    assert added.status_code == 201, added.text
    fid = _a_failure(settings)
    acted = client.post(f"/v1/failures/{fid}/actions", headers=bearer(regulator),
                        json={"action": "commission_lab", "note": "test"})
    assert acted.status_code == 200, acted.text
    entries = [r for r in rows(db_dsn, "SELECT actor, action, target FROM audit_log ORDER BY id")[before:]]
    assert [(actor.split(" (tok_")[0], action, target) for actor, action, target in entries] == [
        ("coop a", "certificate.submit", "certificate:HGZ-AUD-1"),
        ("desk", "certificate.submit", "certificate:HGZ-AUD-2"),
        ("desk", "certificate.submit", "certificate:HGZ-AUD-3"),
        ("desk", "threshold.add", f"threshold:{added.json()['id']}"),
        ("desk", "failure.action", f"failure:{fid}"),
    ]
    assert all(" (tok_" in actor for actor, _, _ in entries)


def _a_failure(settings: Settings) -> str:
    """A positive failure in m1, raised by the real flagger handed one Kafka record (no pipeline needed)."""
    p = reading_payload(signal={"c_line": 1500.0, "t_line": 300.0}, device_result="positive")
    headers = reading_headers("m1", "s1", "d1", reading_topic("m1", "s1", "d1"), utc_now())
    rec = ConsumerRecord(settings.topic_readings, 0, None, 0, 0, 0, b"s1", encode(p), headers, None, -1, -1, -1)
    conn = connect(settings.database_url or "")
    try:
        Flagger(settings).handle(conn, [rec])
        conn.commit()
    finally:
        conn.close()
    return str(scalar(settings.database_url or "", "SELECT failure_id FROM failures WHERE reading_id = %s::uuid",
                      [p["reading_id"]]))
