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

GROUP = "town"
#: Two towns of one county; mkt-a and mkt-b in the first (a village of it), mkt-c in the second.
TOWNS = {"320412101000": "牛塘镇", "320412102000": "洛阳镇"}
MARKETS = {"mkt-a": ("320412101201", "牛塘农贸市场"), "mkt-b": ("320412101000", "牛塘批发市场"),
           "mkt-c": ("320412102000", "洛阳农贸市场")}


def register(url: str, token: str) -> None:
    """The district through the registry API, as a regulator would enter it."""
    headers = {"Authorization": f"Bearer {token}"}
    regions = [{"code": code, "name_zh": name} for code, name in TOWNS.items()]
    assert httpx.put(f"{url}/v1/registry/regions", json=regions, headers=headers).status_code == 200
    for market, (region, name) in MARKETS.items():
        body = {"name_zh": name, "kind": "farmers", "region_code": region}
        assert httpx.put(f"{url}/v1/markets/{market}", json=body, headers=headers).status_code in (200, 201)


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
    # (counted by market: the broker is shared, and another run's readings may arrive too)
    wait_for(lambda: scalar(db_dsn, "SELECT count(*) FROM verdicts WHERE market_id = ANY(%s)", [list(plan)]) == total,
             timeout=60,
             what=f"{total} verdicts")

    token = issue_token("regulator", name="监管 李明")
    register(live_server.url, token)
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
    assert set(shown) == set(expected) and set(TOWNS) <= set(shown)
    for group, (tests, negative, valid) in expected.items():
        assert shown[group] == (f"{tests:,}", f"{negative / valid * 100:.2f}%"), group
    assert "牛塘镇" in page.locator("#group-table").inner_text()
    assert not page.context.csp_violations, page.context.csp_violations
    screenshot(page, "console-district")

    page.click('nav a[href="/console/public"]')
    board = page.locator('#board-links a[href="/board/mkt-a"]')
    assert board.inner_text() == "/board/mkt-a"
    response = page.goto(f"{live_server.url}/board/mkt-a")
    assert response is not None and response.status == 200 and "牛塘农贸市场" in page.content()
    page.goto(f"{live_server.url}/console/district?group={GROUP}")

    with page.expect_download() as download:
        page.locator('#report-form input[name="month"]').fill(datetime.now(UTC).strftime("%Y-%m"))
        page.locator('#report-form button[value="xlsx"]').click()
    book = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    by_market = {r[0]: r[2] for r in book["市场"].iter_rows(min_row=3, values_only=True)}
    assert {k: v for k, v in by_market.items() if k in plan} == {m: sum(v) for m, v in plan.items()}
    by_town = {r[0]: (r[1], r[2]) for r in book["乡镇（街道）"].iter_rows(min_row=3, values_only=True)}
    assert by_town["320412101000"] == ("牛塘镇", sum(plan["mkt-a"]) + sum(plan["mkt-b"]))
