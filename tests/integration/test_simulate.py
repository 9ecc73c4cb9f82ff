"""``rapidtrace simulate`` against the pipeline: certificates first, then readings that sample them,
failures of several kinds, and recall scopes that reach stalls."""

from __future__ import annotations

import argparse
import random
import re
import time
import uuid
from typing import Any

import pytest

from schemas.common import utc_now
from simulators.entry_scans import certificate_pool, fleet_district
from simulators.fleet import Fleet, FleetConfig, market_ids
from simulators.publisher import add_simulate_arguments, district_start, run_simulate
from tests.helpers import rows, wait_for

pytestmark = pytest.mark.integration

# enough readings that the busiest strip lot fills the invalid-rate window (50 tests) several times
RATE, DURATION_S, CERTIFICATES = 400, 8, 200
READING_KINDS = {"positive", "suspicious", "invalid", "verdict_mismatch", "cutoff_mismatch"}


def simulate_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    return parser.parse_args(list(argv))


def all_pages(api_client: Any, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = api_client.get(path, params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def test_simulated_fleet_shows_failures_and_recall_scopes(settings, pipeline, mqtt_broker, api_client, capsys):
    pipeline("store", "flagger", "chain", "deadletters")
    prefix, seed = f"s{uuid.uuid4().hex[:8]}", random.randrange(2**31)
    args = simulate_args(
        "--mqtt-url", mqtt_broker.url, "--protocol", mqtt_broker.protocol, "--rate", str(RATE),
        "--duration", str(DURATION_S), "--markets", "2", "--market-prefix", prefix, "--seed", str(seed),
        "--positive-rate", "0.05", "--suspicious-rate", "0.03", "--invalid-rate", "0.03",
        "--bad-lot-after", "0", "--certificates", str(CERTIFICATES), "--certificates-every", "2", "--quiet",
    )
    started = time.monotonic()
    assert run_simulate(args, settings) == 0
    assert time.monotonic() - started < DURATION_S + 10
    summary = re.search(r"published ([\d,]+) readings, 0 duplicates", capsys.readouterr().err)
    assert summary, "the simulator prints what it published"
    published = int(summary.group(1).replace(",", ""))
    # the rate is a ceiling: on a busy machine the publisher sends fewer, but at least half
    assert published >= RATE * DURATION_S * 0.5

    # the district chain, as the simulator made it (same seed, same day)
    config = FleetConfig(markets=2, market_prefix=prefix, seed=seed)
    records = fleet_district(market_ids(config), CERTIFICATES, seed=seed, start=district_start(utc_now()))
    numbers = {r["certificate_no"] for r in records}
    stall_numbers = {ref.certificate_no for ref in certificate_pool(records)}
    stored = wait_for(lambda: numbers <= {r[0] for r in rows(settings.database_url,
                                                              "SELECT certificate_no FROM certificates")},
                      what="every certificate of the district chain")
    assert stored
    one = sorted(stall_numbers)[0]
    body = api_client.get(f"/v1/certificates/{one}").json()
    assert body["status"] == "accepted" and len(body["digest"]) == 64
    assert body["record"]["location"]["market_id"] in market_ids(config)

    # readings of our markets reference the stall lots of their own market
    def stored() -> int:
        return sum(len(all_pages(api_client, "/v1/readings", market_id=m)) for m in market_ids(config))

    wait_for(lambda: stored() == published, timeout=60, what=f"all {published} published readings")
    by_no = {r["certificate_no"]: r for r in records}
    referenced = total = 0
    for market in market_ids(config):
        for reading in all_pages(api_client, "/v1/readings", market_id=market):
            total += 1
            if reading["certificate_no"]:
                referenced += 1
                assert reading["certificate_no"] in stall_numbers
                cert = by_no[reading["certificate_no"]]
                assert cert["location"]["market_id"] == market and reading["lot_code"] == cert["lot_code"]
                assert reading["vendor_id"] == cert["location"]["stall_id"]
    # the simulator references a lot in 80% of readings when the market has one of the commodity or
    # category; the district always carries vegetables (most tests), so well over a quarter do
    assert referenced > total * 0.25, (referenced, total)

    # failures of every per-reading kind; the bad strip lot raises its invalid-rate alarm
    def kinds() -> set[str]:
        found = set()
        for market in market_ids(config):
            found |= {f["kind"] for f in all_pages(api_client, "/v1/failures", market_id=market)}
        return found

    assert wait_for(lambda: kinds() >= READING_KINDS, what=f"failures of kinds {READING_KINDS}")
    bad_lot = Fleet(config).gold_lots_by_use()[-1]
    assert wait_for(lambda: all_pages(api_client, "/v1/failures", kind="invalid_rate_strip_lot", strip_lot=bad_lot),
                    what=f"an invalid-rate failure of strip lot {bad_lot}")

    # a positive sample's recall scope: up to its producers, down to every stall their lots reached
    positives = all_pages(api_client, "/v1/failures", market_id=f"{prefix}-01", kind="positive")
    scopes = [api_client.get(f"/v1/failures/{f['failure_id']}/recall-scope").json() for f in positives[:20]]
    traced = [s for s in scopes if s["start"]]
    assert traced, "no positive sample had a certificate"
    for scope in traced:
        assert scope["start"][0] in stall_numbers
        assert scope["origins"] and all(by_no[o]["kind"] == "origin" for o in scope["origins"])
        assert scope["stalls"] and any(scope["start"][0] in s["lots"] for s in scope["stalls"])
        assert {lot["certificate_no"] for lot in scope["lots"]} >= set(scope["start"])
