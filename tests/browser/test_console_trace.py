"""In Chromium: a chain submitted through the API (Kafka → chain consumer) traced, verified, exported; recall scope."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from simulators.certificates import sample_chain
from tests.browser.conftest import LiveServer
from tests.helpers import encode, publish, reading_payload, reading_topic, scalar, wait_for

pytestmark = pytest.mark.integration


def test_regulator_traces_verifies_exports_and_scopes_a_recall(
    live_server: LiveServer, pipeline: Callable[..., Any], issue_token: Callable[..., str],
    login: Callable[[str], Any], screenshot: Callable[[Any, str], Any], db_dsn: str,
) -> None:
    pipeline("store", "flagger", "chain", "deadletters")
    token = issue_token("regulator", name="监管 李明")
    chain = sample_chain()
    submitted = httpx.post(f"{live_server.url}/v1/certificates", json=chain,
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert submitted.status_code == 202, submitted.text
    wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM certificates") == len(chain), timeout=60,
             what="the chain stored")
    p = reading_payload(signal={"c_line": 1000.0, "t_line": 450.0}, device_result="positive")
    p["measured_at"] = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    p["sample"] = {**p["sample"], "certificate_no": "T1", "lot_code": "W1-1"}
    settings = live_server.settings
    publish(settings.mqtt_url or "", settings.mqtt_protocol, [(reading_topic("m1", "s1", "d1"), encode(p))])
    wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM failures WHERE certificate_no = 'T1'") == 1,
             what="positive")
    failure_id = scalar(db_dsn, "SELECT failure_id FROM failures WHERE certificate_no = 'T1'")

    page = login(token)
    page.click('nav a[href="/console/trace"]')
    page.fill('#trace-form input[name="no"]', "S1")
    page.click("#trace-form button")
    page.wait_for_selector('html[data-graph="6"]')  # S1; up M1, O1, O2; down T1, T2
    rows = page.locator("#chain-nodes tbody tr").evaluate_all("rs => rs.map(r => r.dataset.no)")
    assert set(rows) == {"S1", "M1", "O1", "O2", "T1", "T2"}
    assert page.locator("#verify-result").get_attribute("data-ok") == "true"
    page.wait_for_timeout(300)
    screenshot(page, "console-trace")

    with page.expect_download() as download:
        page.click("#epcis-link")
    doc = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert doc["type"] == "EPCISDocument"
    with page.expect_download() as fsma:
        page.click("#fsma-link")
    assert fsma.value.path().read_text(encoding="utf-8").startswith("Event Type")

    page.goto(f"{live_server.url}/console/failures/{failure_id}")
    page.click('a[href^="/console/trace/recall/"]')
    page.wait_for_selector("#recall-stalls")
    stalls = page.locator("#recall-stalls tbody tr").all_inner_texts()
    assert any("stall-1" in s and "120" in s for s in stalls) and any("stall-4" in s for s in stalls)
    assert not page.context.csp_violations, page.context.csp_violations
    screenshot(page, "console-recall")

    missing = page.goto(f"{live_server.url}/console/trace?no=NOPE-1")
    assert missing is not None and missing.status == 404
    assert page.locator("#trace-error").is_visible()
