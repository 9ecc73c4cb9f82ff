"""The public pages over HTTP (no browser): board and certificate page, their JSON, headers, 404s,
escaping and the per-address rate limit.  The browser tests (tests/browser/) drive the same pages live."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import segno
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Principal
from consumers.chain_store import ChainStore
from consumers.flagger import Flagger
from consumers.reading_store import ReadingStore
from schemas.settings import Settings
from simulators.certificates import sample_chain
from storage.db import connect
from tests.integration import test_failures as tf
from tests.integration.test_failures import REGULATOR, T0, Clock, payload, record, run_batch

pytestmark = pytest.mark.integration

client = tf.client
clock = tf.clock
db_settings = tf.db_settings

XSS = "<img src=x onerror=alert(1)>"
MARKET = {"name_zh": "湖塘农贸市场", "kind": "farmers", "region_code": "320412101000"}


def _store_chain(dsn: str) -> None:
    conn = connect(dsn)
    try:
        ChainStore(Settings()).store(conn, [(json.dumps(r, ensure_ascii=False).encode(), "rt.certificates.v1")
                                            for r in sample_chain()])
        conn.commit()
    finally:
        conn.close()


def _reading(commodity: str, c: float, t: float, result: str, minutes: int, **sample: Any) -> dict[str, Any]:
    p = payload(c, t, result)
    p["measured_at"] = (T0 - timedelta(minutes=minutes)).isoformat()
    p["sample"] = {**p["sample"], "commodity": commodity, **sample}
    p["operator_id"] = "op-secret-77"
    return p


@pytest.fixture
def seeded(db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]) -> TestClient:
    tc = client(REGULATOR)
    assert tc.put("/v1/registry/regions", json=[{"code": "320412101000", "name_zh": "湖塘镇"}]).status_code == 200
    assert tc.put("/v1/markets/m1", json=MARKET).status_code == 201
    _store_chain(db_dsn)
    readings = [
        _reading("韭菜", 1500, 1500, "negative", 50, vendor_id="m1-stall-012", certificate_no="T1"),
        _reading(XSS, 1500, 200, "positive", 40, vendor_id="wang-13912345678"),
        _reading("芹菜", 1500, 1450, "negative", 30, vendor_id="stall-3", certificate_no="S1"),
        _reading("猪肉", 50, 40, "invalid", 20, vendor_id="stall-4"),
    ]
    records = [record(p, market="m1", device="reader-secret-9", offset=i) for i, p in enumerate(readings)]
    conn = connect(db_dsn)
    try:
        ReadingStore(db_settings).handle(conn, records)
        conn.commit()
    finally:
        conn.close()
    run_batch(Flagger(db_settings, clock=clock), db_dsn, records)
    return tc


def test_board_shows_today_by_server_verdict_without_people(seeded: TestClient) -> None:
    page = seeded.get("/board/m1")
    assert page.status_code == 200
    html = page.text
    assert "湖塘农贸市场" in html and "湖塘镇" in html
    assert "毒死蜱" in html  # the test item in Chinese (chlorpyrifos)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and XSS not in html
    for secret in ("op-secret-77", "wang-", "13912345678", "reader-secret-9", "m1-stall-012"):
        assert secret not in html, secret
    assert page.headers["cache-control"] == "public, max-age=2"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert not re.search(r"<script>(?!</script>)", html) and " on" + "error=" not in html.replace(
        "onerror=alert(1)&gt;", "")
    data = seeded.get("/board/m1/data.json").json()
    assert data["tests"] == 4 and data["qualified"] == 2 and data["unqualified"] == 1
    assert data["pass_rate"] == "66.7%"  # 2 negative of 3 valid
    rows = {r["commodity"]: r for r in data["rows"]}
    assert rows["韭菜"]["result"] == "合格" and rows["韭菜"]["stall"] == "12"
    assert rows[XSS]["result"] == "不合格" and rows[XSS]["stall"] == "—"
    assert rows["猪肉"]["result"] == "无效，重新检测"
    assert [f["state"] for f in data["failures"]] == ["已暂停销售"]
    text = json.dumps(data, ensure_ascii=False)
    for secret in ("op-secret-77", "wang-", "13912345678", "reader-secret-9"):
        assert secret not in text


def test_unknown_ids_get_404_pages(seeded: TestClient) -> None:
    for path in ("/board/nope", "/board/%3Cscript%3E", "/c/NOPE", "/c/NOPE/qr.svg", "/c/NOPE/qr.png",
                 "/public/static/pages.py"):
        answer = seeded.get(path)
        assert answer.status_code == 404, path
        assert "未找到" in answer.text and answer.headers["cache-control"] == "no-store"
    assert seeded.get("/board/nope/data.json").json()["error"]["code"] == "not_found"


def test_certificate_page_and_qr(seeded: TestClient) -> None:
    page = seeded.get("/c/T1")
    assert page.status_code == 200, page.text
    html = page.text
    assert "韭菜" in html and "120 kg" in html
    assert "producer coop-1" in html and "producer coop-2" in html  # the merge had two producers
    assert "自行检测合格" in html and "追溯链校验通过" in html
    assert "经 5 个主体之手" in html  # coop-1, coop-2, col-1, whs-1, stall-1
    assert html.count("class=\"ok result\"") == 2  # T1's own test and S1's upstream test
    assert "上游批次" in html and "湖塘农贸市场" in html
    assert page.headers["cache-control"] == "public, max-age=10"
    svg = seeded.get("/c/T1/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<svg")
    png = seeded.get("/c/T1/qr.png")
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_qr_code_points_at_the_certificate_page(db_dsn: str) -> None:
    """The printed code is the one segno makes for the page's address (RT_PUBLIC_BASE_URL when set)."""
    _store_chain(db_dsn)
    settings = Settings(database_url=db_dsn, api_auth=False, public_base_url="https://trace.example.cn/")
    with TestClient(create_app(settings)) as tc:
        got = tc.get("/c/T1/qr.png").content
    want, other = io.BytesIO(), io.BytesIO()
    segno.make("https://trace.example.cn/c/T1", error="m").save(want, kind="png", scale=8, border=4)
    segno.make("https://trace.example.cn/c/T2", error="m").save(other, kind="png", scale=8, border=4)
    assert got == want.getvalue() and got != other.getvalue()


def test_public_pages_are_rate_limited_per_address(db_dsn: str) -> None:
    settings = Settings(database_url=db_dsn, api_auth=False, public_rate_per_minute=60)  # burst of 10
    with TestClient(create_app(settings)) as tc:
        codes = [tc.get("/board/nope").status_code for _ in range(12)]
        assert codes[:10] == [404] * 10 and codes[10:] == [429, 429]
        limited = tc.get("/board/nope/data.json")
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert tc.get("/healthz").status_code in (200, 503)  # the API itself is not limited by this
