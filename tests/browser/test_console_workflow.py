"""In Chromium, on the real stack: the live list, a positive walked to closure by forms, market scoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.settings import Settings
from tests.browser.conftest import LiveServer
from tests.helpers import encode, publish, reading_payload, reading_topic, scalar, wait_for

pytestmark = pytest.mark.integration


def positive(commodity: str) -> dict[str, Any]:
    p = reading_payload(signal={"c_line": 1000.0, "t_line": 480.0}, device_result="positive")
    p["measured_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    p["sample"] = {**p["sample"], "commodity": commodity, "certificate_no": "HGZ-BROWSER-0001"}
    return p


def send(settings: Settings, market: str, p: dict[str, Any]) -> None:
    publish(settings.mqtt_url or "", settings.mqtt_protocol, [(reading_topic(market, "s1", f"d-{market}"), encode(p))])


def act(page: Any, action: str, **fields: str) -> None:
    form = page.locator(f'form[data-action="{action}"]')
    for name, value in fields.items():
        form.locator(f'input[name="{name}"]').fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#action-done")


def test_operator_sees_a_positive_live_and_walks_it_to_closure(
    live_server: LiveServer, pipeline: Callable[..., Any], issue_token: Callable[..., str],
    login: Callable[[str], Any], screenshot: Callable[[Any, str], Any], db_dsn: str,
) -> None:
    pipeline("store", "flagger")
    operator = login(issue_token("operator", name="检测员 王芳", markets=["mkt-a"]))
    operator.wait_for_selector('#live-state[data-live="1"]')
    screenshot(operator, "console-today-empty")

    send(live_server.settings, "mkt-a", positive("韭菜"))
    wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM failures WHERE market_id = 'mkt-a'") == 1, interval=0.02,
             timeout=60, what="the positive's failure")
    committed = time.monotonic()
    row = operator.locator("#live-failures tbody tr.new")
    row.wait_for(timeout=5000)
    shown_after = time.monotonic() - committed
    assert shown_after < 2.0, f"the positive appeared {shown_after:.2f}s after its failure was committed"
    assert "韭菜" in row.inner_text()
    assert operator.locator("#live-cue.shown").is_visible()
    screenshot(operator, "console-today-live")
    # the live row is worded in Chinese on the server, as the rows a reload renders: never the stored English
    live_summary = row.locator("a").inner_text()
    assert live_summary.startswith("阳性：韭菜 / 毒死蜱，mkt-a/s1（T/C 比值 0.48 ≤ 阳性阈值 0.8）"), live_summary
    assert "positive strip" not in row.inner_text() and "毒死蜱" in row.locator("td").nth(5).inner_text()
    assert "positive strip" not in operator.locator("#live-cue").inner_text()
    live_cells = row.locator("td").all_inner_texts()
    operator.reload()
    rendered = operator.locator("#live-failures tbody tr").first
    assert rendered.locator("td").all_inner_texts()[1:-1] == live_cells[1:-1]  # the same but time and due formats

    rendered.locator("a").click()
    operator.wait_for_selector("#history")
    assert operator.locator("#failure-summary").inner_text() == live_summary
    assert operator.locator("#objection-countdown").is_visible()
    assert operator.locator("#server-verdict").inner_text().strip().startswith("阳性")
    assert operator.locator('form[data-action="destroy"]').count() == 0  # inside the 4 h window
    screenshot(operator, "console-failure-suspended")

    act(operator, "object", note="摊主对结果提出异议")
    assert "送检复检" in operator.locator("#failure-state").inner_text()
    act(operator, "lab_negative", lab_report_no="LAB-2026-1201-07", note="实验室复检阴性")
    assert "已放行" in operator.locator("#failure-state").inner_text()
    assert operator.locator('form[data-action="close"]').count() == 0  # closing is the regulator's
    failure_url = operator.url.split("?")[0]

    regulator = login(issue_token("regulator", name="监管 李明"))
    regulator.goto(failure_url)
    act(regulator, "close", note="假阳性，结案")
    assert "已结案" in regulator.locator("#failure-state").inner_text()
    steps = regulator.locator("#history li").evaluate_all("items => items.map(i => i.dataset.action)")
    assert steps == ["raised", "suspend_sale", "object", "lab_negative", "close"]
    history = regulator.locator("#history").inner_text()
    assert "LAB-2026-1201-07" in history and "检测员 王芳" in history and "监管 李明" in history
    screenshot(regulator, "console-failure-closed")
    assert not operator.context.csp_violations and not regulator.context.csp_violations


def test_an_operator_cannot_open_another_markets_failure(
    live_server: LiveServer, pipeline: Callable[..., Any], issue_token: Callable[..., str],
    login: Callable[[str], Any], screenshot: Callable[[Any, str], Any], db_dsn: str,
) -> None:
    pipeline("store", "flagger")
    send(live_server.settings, "mkt-b", positive("豇豆"))
    wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM failures WHERE market_id = 'mkt-b'") == 1, what="B's failure")
    failure_id = scalar(db_dsn, "SELECT failure_id FROM failures WHERE market_id = 'mkt-b'")
    page = login(issue_token("operator", markets=["mkt-a"]))
    assert "豇豆" not in page.locator("#live-failures").inner_text()
    response = page.goto(f"{live_server.url}/console/failures/{failure_id}")
    assert response is not None and response.status == 404
    assert "404" in page.locator("h1").inner_text() and "豇豆" not in page.content()
    screenshot(page, "console-other-market-404")
