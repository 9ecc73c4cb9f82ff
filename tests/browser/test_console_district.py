"""In Chromium: the regulator's district table agrees with the API, charts draw, the report downloads."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from tests.browser.conftest import LiveServer
from tests.helpers import encode, publish, reading_payload, reading_topic, scalar, wait_for

pytestmark = pytest.mark.integration

#: The town table once the registry (i12a) knows towns; the market table until then.
GROUP = "market"


def reading(c: float, t: float, result: str, analyte: str = "chlorpyrifos") -> dict[str, Any]:
    p = reading_payload(signal={"c_line": c, "t_line": t}, device_result=result)
    p["measured_at"] = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    p["assay"] = {**p["assay"], "analyte": analyte}
    return p


def test_regulator_district_matches_the_api(
    live_server: LiveServer, pipeline: Callable[..., Any], issue_token: Callable[..., str],
    login: Callable[[str], Any], screenshot: Callable[[Any, str], Any], db_dsn: str,
) -> None:
    pipeline("store", "flagger")
    plan = {"mkt-a": (6, 1, 1), "mkt-b": (3, 2, 0), "mkt-c": (4, 0, 1)}  # negatives, positives, invalid
    messages = []
    for market, (neg, pos, inv) in plan.items():
        topic = reading_topic(market, "s1", f"d-{market}")
        messages += [(topic, encode(reading(1000.0, 1200.0, "negative"))) for _ in range(neg)]
        messages += [(topic, encode(reading(1000.0, 450.0, "positive"))) for _ in range(pos)]
        messages += [(topic, encode(reading(50.0, 900.0, "invalid"))) for _ in range(inv)]
    settings = live_server.settings
    publish(settings.mqtt_url or "", settings.mqtt_protocol, messages)
    total = sum(sum(v) for v in plan.values())
    wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM verdicts") == total, what=f"{total} verdicts")

    token = issue_token("regulator", name="监管 李明")
    page = login(token)
    page.goto(f"{live_server.url}/console/district?group={GROUP}")
    page.wait_for_selector('html[data-charts="2"]')
    page.wait_for_timeout(300)  # let the canvas paint before the screenshot
    shown = {
        row.get_attribute("data-group"): (row.locator(".tests").inner_text(), row.locator(".pass-rate").inner_text())
        for row in page.locator("#group-table tbody tr").all()
    }
    since = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    api = httpx.get(f"{live_server.url}/v1/stats/pass-rate", params={"group_by": GROUP, "since": since},
                    headers={"Authorization": f"Bearer {token}"}).json()["items"]
    expected: dict[str, list[int]] = {}
    for item in api:
        sums = expected.setdefault(item["group"], [0, 0, 0])
        sums[0] += item["tests"]
        sums[1] += item["negative"]
        sums[2] += item["valid_tests"]
    assert set(shown) == set(expected) == set(plan)
    for group, (tests, negative, valid) in expected.items():
        assert shown[group] == (f"{tests:,}", f"{negative / valid * 100:.2f}%"), group
    assert not page.context.csp_violations, page.context.csp_violations
    screenshot(page, "console-district")

    with page.expect_download() as download:
        page.locator('#report-form input[name="month"]').fill(datetime.now(UTC).strftime("%Y-%m"))
        page.locator('#report-form button[value="xlsx"]').click()
    book = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    sheet = book[{"market": "市场", "town": "乡镇（街道）"}[GROUP]]
    cells = {r[0]: r[1] for r in sheet.iter_rows(min_row=3, values_only=True)}
    assert {k: v for k, v in cells.items() if k in plan} == {m: sum(v) for m, v in plan.items()}
