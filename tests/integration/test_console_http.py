"""The console over HTTP on the real pipeline: log in, sessions, CSRF, scoping, escaping, the workflow forms.

(The browser tests in tests/browser/ drive the same pages in Chromium; these check what a browser
does not show: headers, status codes, cookies, forged requests.)
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.settings import Settings
from storage.db import connect
from storage.tokens import issue_token
from tests.helpers import encode, publish, reading_payload, reading_topic, scalar, wait_for

pytestmark = pytest.mark.integration

XSS = "<img src=x onerror=alert(1)>"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def auth_settings(settings: Settings) -> Settings:
    return settings.with_overrides(api_auth=True)


@pytest.fixture
def app_client(auth_settings: Settings) -> Iterator[Callable[[], TestClient]]:
    app = create_app(auth_settings)
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for c in clients:
            c.__exit__(None, None, None)


@pytest.fixture
def issue(db_dsn: str) -> Callable[..., str]:
    def make(role: str, **kwargs: Any) -> str:
        conn = connect(db_dsn)
        try:
            issued = issue_token(conn, name=kwargs.pop("name", f"test {role}"), role=role, actor="test", **kwargs)
            conn.commit()
        finally:
            conn.close()
        return issued.token

    return make


def login(client: TestClient, token: str) -> None:
    page = client.get("/console/login")
    csrf = CSRF_RE.search(page.text)
    assert csrf, page.text
    r = client.post("/console/login", data={"token": token, "csrf": csrf.group(1), "next": "/console/"})
    assert r.status_code == 303 and r.headers["location"] == "/console/", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token not in cookie


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found
    return found.group(1)


def positive(market: str, commodity: str = "韭菜") -> dict[str, Any]:
    p = reading_payload(signal={"c_line": 1000.0, "t_line": 500.0}, device_result="positive")
    p["measured_at"] = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    p["sample"] = {**p["sample"], "commodity": commodity}
    return p


@pytest.fixture
def two_markets(settings: Settings, pipeline: Callable[..., Any]) -> dict[str, str]:
    """A positive in market mA (its commodity an XSS payload) and one in mB; returns failure ids by market."""
    pipeline("store", "flagger")
    a, b = positive("mA", XSS), positive("mB")
    publish(settings.mqtt_url or "", settings.mqtt_protocol,
            [(reading_topic("mA", "s1", "dA"), encode(a)), (reading_topic("mB", "s1", "dB"), encode(b))])
    dsn = settings.database_url or ""
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM failures WHERE market_id IN ('mA', 'mB')") == 2,
             what="2 positives")
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM readings WHERE market_id IN ('mA', 'mB')") == 2,
             what="2 stored readings")
    return {m: str(scalar(dsn, "SELECT failure_id FROM failures WHERE market_id = %s", [m])) for m in ("mA", "mB")}


def test_console_needs_a_session_and_refuses_bad_logins(app_client: Callable[[], TestClient],
                                                        issue: Callable[..., str]) -> None:
    client = app_client()
    r = client.get("/console/")
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=%2Fconsole%2F"
    assert client.get("/console/failures/00000000-0000-0000-0000-000000000000").status_code == 303
    page = client.get("/console/login")
    assert page.status_code == 200 and "content-security-policy" in page.headers
    csrf = csrf_of(page.text)
    assert client.post("/console/login", data={"token": "rtk_nope", "csrf": csrf}).status_code == 401
    assert client.post("/console/login", data={"token": issue("regulator")}).status_code == 403  # no CSRF field
    producer = issue("producer", holder_id="h1")
    assert client.post("/console/login", data={"token": producer, "csrf": csrf}).status_code == 403
    forged = client.get("/console/", cookies={"rt_session": "eyJzaWQiOiJ4In0.AAAA"})
    assert forged.status_code == 303


def test_operator_sees_only_its_market_and_acts_through_the_workflow(
    app_client: Callable[[], TestClient], issue: Callable[..., str], two_markets: dict[str, str], db_dsn: str
) -> None:
    client = app_client()
    token = issue("operator", markets=["mA"])
    login(client, token)
    today = client.get("/console/")
    assert today.status_code == 200, today.text
    assert XSS not in today.text and "&lt;img src=x onerror=alert(1)&gt;" in today.text
    assert two_markets["mA"] in today.text and two_markets["mB"] not in today.text

    other = client.get(f"/console/failures/{two_markets['mB']}")
    assert other.status_code == 404 and other.headers["content-type"].startswith("text/html")
    assert "mB" not in other.text

    page = client.get(f"/console/failures/{two_markets['mA']}")
    assert page.status_code == 200
    assert 'data-action="object"' in page.text and 'data-action="destroy"' not in page.text  # inside the 4 h
    assert 'data-action="close"' not in page.text  # regulators close
    url = f"/console/failures/{two_markets['mA']}/actions"
    assert client.post(url, data={"action": "object", "note": "x"}).status_code == 403  # no CSRF token
    refused = client.post(url, data={"action": "lab_negative", "lab_report_no": "R1", "csrf": csrf_of(page.text)})
    assert refused.status_code == 409 and "action-error" in refused.text and "sale_suspended" in refused.text
    done = client.post(url, data={"action": "object", "note": "vendor objects", "csrf": csrf_of(page.text)})
    assert done.status_code == 303
    after = client.get(done.headers["location"])
    assert "vendor objects" in after.text and 'data-action="lab_negative"' in after.text
    actors = scalar(db_dsn, "SELECT actor FROM failure_events WHERE action = 'object'")
    assert actors.startswith("test operator")
    assert token not in after.text

    copied = client.cookies.get("rt_session")
    out = client.post("/console/logout", data={"csrf": csrf_of(after.text)})
    assert out.status_code == 303 and 'rt_session=""' in out.headers["set-cookie"]
    # a copy of the cookie taken before logging out no longer opens the console
    client.cookies.set("rt_session", copied)
    again = client.get("/console/", follow_redirects=False)
    assert again.status_code in (302, 303, 307) and "/console/login" in again.headers["location"]


def test_session_ends_when_its_token_is_revoked(app_client: Callable[[], TestClient], issue: Callable[..., str],
                                                db_dsn: str) -> None:
    client = app_client()
    login(client, issue("regulator", name="soon revoked"))
    assert client.get("/console/").status_code == 200
    conn = connect(db_dsn)
    with conn.cursor() as cur:
        cur.execute("UPDATE api_tokens SET revoked_at = now(), revoked_by = 'test' WHERE name = 'soon revoked'")
    conn.commit()
    conn.close()
    assert client.get("/console/").status_code == 303


def test_regulator_pages_thresholds_form_and_report(app_client: Callable[[], TestClient],
                                                     issue: Callable[..., str], db_dsn: str) -> None:
    client = app_client()
    login(client, issue("operator", markets=["mA"]))
    refused = client.get("/console/district")
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")

    client.cookies.clear()
    login(client, issue("regulator", name="reg"))
    page = client.get("/console/district/thresholds")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    form = {"scope": "strip_lot", "analyte": "chlorpyrifos", "strip_lot": "CG-NEW-1",
            "params": '{"mode": "ratio", "c_min": 100, "r_pos": 0.75, "r_neg": 0.95}', "note": "new lot"}
    assert client.post("/console/district/thresholds", data=form).status_code == 403  # no CSRF token
    bad = client.post("/console/district/thresholds", data={**form, "params": "{nope", "csrf": csrf})
    assert bad.status_code == 422 and "threshold-error" in bad.text and "{nope" in bad.text
    added = client.post("/console/district/thresholds", data={**form, "csrf": csrf})
    assert added.status_code == 303, added.text
    listed = client.get(added.headers["location"]).text
    assert "CG-NEW-1" in listed and "threshold-added" in listed
    assert scalar(db_dsn, "SELECT count(*) FROM threshold_sets WHERE strip_lot = 'CG-NEW-1'") == 1

    report = client.get("/console/district/report", params={"month": "2026-11", "format": "csv"})
    assert report.status_code == 200 and report.content.startswith("\ufeff".encode())
    assert 'filename="rapidtrace-report-2026-11.csv"' in report.headers["content-disposition"]
    assert client.get("/console/district/report", params={"month": "2026-13"}).status_code == 422
    assert client.get("/console/district/deadletters").status_code == 200
    assert client.get("/console/public").status_code == 200


def test_console_words_summaries_in_the_pages_language(
    app_client: Callable[[], TestClient], issue: Callable[..., str], settings: Settings,
    pipeline: Callable[..., Any], db_dsn: str,
) -> None:
    """A positive and a reader the server contradicts, through MQTT, the bridge, Kafka and the flagger: the console
    shows them in Chinese (today, the district, each failure's page) and in English on the switch, never the
    flagger's stored English sentence in Chinese; the API keeps that sentence."""
    pipeline("store", "flagger")
    mismatch = reading_payload(device_result="positive")  # T/C 0.98: the server judges it negative
    mismatch["measured_at"] = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    topic = reading_topic("mZ", "s1", "dZ")
    publish(settings.mqtt_url or "", settings.mqtt_protocol,
            [(topic, encode(positive("mZ"))), (topic, encode(mismatch))])
    wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM failures WHERE market_id = 'mZ'") == 2, what="2 failures")
    ids = {k: str(scalar(db_dsn, "SELECT failure_id FROM failures WHERE kind = %s", [k]))
           for k in ("positive", "verdict_mismatch")}
    stored = {k: str(scalar(db_dsn, "SELECT summary FROM failures WHERE kind = %s", [k])) for k in ids}
    assert stored == {
        "positive": "positive strip: 韭菜 / chlorpyrifos at mZ/s1 (T/C 0.5000 <= 0.8)",
        "verdict_mismatch": "device dZ said positive, server judged negative: 韭菜 / chlorpyrifos at mZ/s1",
    }
    zh = {"positive": "阳性：韭菜 / 毒死蜱，mZ/s1（T/C 比值 0.5 ≤ 阳性阈值 0.8）",
          "verdict_mismatch": "读卡器 dZ 判为阳性，服务器判为阴性：韭菜 / 毒死蜱，mZ/s1"}
    en = {"positive": "Positive: 韭菜 / chlorpyrifos at mZ/s1 (T/C 0.5 ≤ r_pos 0.8)",
          "verdict_mismatch": "reader dZ said positive, the server judged negative: 韭菜 / chlorpyrifos at mZ/s1"}

    def shows(page: str, want: dict[str, str], kinds: tuple[str, ...] = ("positive", "verdict_mismatch")) -> None:
        for kind in kinds:
            assert want[kind] in page, (kind, want[kind])
            assert stored[kind] not in page and html.escape(stored[kind]) not in page, kind

    client = app_client()
    login(client, issue("operator", markets=["mZ"]))
    today = client.get("/console/")
    assert today.status_code == 200
    shows(today.text, zh)
    assert "&amp;lang=zh-CN" in today.text  # the live stream words its rows in the page's language
    for kind, fid in ids.items():
        page = client.get(f"/console/failures/{fid}")
        assert page.status_code == 200
        shows(page.text, zh, (kind,))
        assert f'<span id="failure-summary">{zh[kind]}</span>' in page.text
    reasoned = client.get(f"/console/failures/{ids['positive']}").text
    assert '<span class="muted" id="server-reason">T/C 比值 0.5 ≤ 阳性阈值 0.8</span>' in reasoned  # not T/C 0.5 <= 0.8
    shows(client.get("/console/", params={"lang": "en"}).text, en)
    english = client.get(f"/console/failures/{ids['verdict_mismatch']}")  # the cookie the switch set
    assert en["verdict_mismatch"] in english.text

    client.cookies.clear()
    login(client, issue("regulator"))
    district = client.get("/console/district", params={"lang": "zh-CN"})
    assert district.status_code == 200
    shows(district.text, zh)  # open positives and anomalies

    api = client.get("/v1/failures", params={"market_id": "mZ"},
                     headers={"Authorization": f"Bearer {issue('regulator', name='api')}"})
    assert api.status_code == 200, api.text
    assert {f["kind"]: f["summary"] for f in api.json()["items"]} == stored
    assert all("summary_text" not in f for f in api.json()["items"])
