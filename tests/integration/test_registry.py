"""The registry: markets and stations through the API and the CLI, unregistered markets from real readings,
statistics by town, village and grid, and the registry's deadline and working-hours rules in the flagger."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.deps import Principal
from consumers.flagger import Flagger
from runtime.cli import main as cli_main
from schemas.settings import Settings
from storage.db import connect
from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for
from tests.integration import test_failures as tf
from tests.integration import test_stats as ts
from tests.integration.test_failures import OPERATOR, REGULATOR, T0, Clock, payload, record, run_batch

pytestmark = pytest.mark.integration

client = tf.client
clock = tf.clock
db_settings = tf.db_settings
_policies_paused = ts._policies_paused

TOWN_A, TOWN_B = "320412101000", "320412102000"
VILLAGE_B = "320412102201"
MARKET = {"name_zh": "湖塘农贸市场", "name_en": "Hutang Farmers' Market", "kind": "farmers",
          "region_code": TOWN_A, "grid_id": "G1", "address": "湖塘镇"}


def _register(tc: TestClient) -> None:
    regions = [{"code": "320412000000", "name_zh": "武进区"}, {"code": TOWN_A, "name_zh": "湖塘镇"},
               {"code": TOWN_B, "name_zh": "牛塘镇"}, {"code": VILLAGE_B, "name_zh": "青云村"}]
    assert tc.put("/v1/registry/regions", json=regions).status_code == 200
    assert tc.put("/v1/markets/m1", json=MARKET).status_code == 201
    m2 = {**MARKET, "name_zh": "青云村快检点", "kind": "village_station", "region_code": VILLAGE_B, "grid_id": "G2"}
    assert tc.put("/v1/markets/m2", json=m2).status_code == 201


def test_markets_and_stations_through_the_api(client: Callable[[Principal], TestClient]) -> None:
    tc = client(REGULATOR)
    _register(tc)
    again = tc.put("/v1/markets/m1", json={**MARKET, "name_en": "Hutang market"})
    assert again.status_code == 200 and again.json()["name_en"] == "Hutang market"
    hours = {"mon": "06:00-18:00", "tue": "06:00-18:00", "sun": None}
    put = tc.put("/v1/markets/m1/stations/s1", json={"name": "快检室", "hours": hours})
    assert put.status_code == 201, put.text
    got = tc.get("/v1/markets/m1").json()
    assert got["town_name"] == "湖塘镇" and got["village_name"] is None and got["time_zone"] == "Asia/Shanghai"
    assert got["stations"][0]["hours"]["mon"] == "06:00-18:00" and got["stations"][0]["hours"]["wed"] is None
    assert tc.get("/v1/markets/m2").json()["village_name"] == "青云村"
    twice = [{"code": TOWN_B, "name_zh": "旧名"}, {"code": TOWN_B, "name_zh": "牛塘镇"}]
    assert [r["name_zh"] for r in tc.put("/v1/registry/regions", json=twice).json()] == ["牛塘镇"]
    assert [m["market_id"] for m in tc.get("/v1/markets", params={"kind": "farmers"}).json()["items"]] == ["m1"]
    page = tc.get("/v1/markets", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    assert tc.get("/v1/markets", params={"cursor": page["next_cursor"]}).json()["items"][0]["market_id"] == "m2"
    # an operator sees its own market only
    assert [m["market_id"] for m in client(OPERATOR).get("/v1/markets").json()["items"]] == ["m1"]
    assert client(OPERATOR).get("/v1/markets/m2").status_code == 404
    assert client(OPERATOR).put("/v1/markets/m3", json=MARKET).status_code == 403
    tc = client(REGULATOR)
    # bad input: clear 4xx errors in the one shape
    for body, where in [({**MARKET, "region_code": "320412000000"}, "county"),
                        ({**MARKET, "region_code": "3204121"}, "region_code"),
                        ({**MARKET, "kind": "bazaar"}, "kind"),
                        ({**MARKET, "time_zone": "Mars/Olympus"}, "time zone")]:
        bad = tc.put("/v1/markets/m9", json=body)
        assert bad.status_code == 422 and where in bad.json()["error"]["message"], bad.text
    bad = tc.put("/v1/markets/m1/stations/s2", json={"name": "x", "hours": {"mon": "18:00-06:00"}})
    assert bad.status_code == 422 and "end before" in bad.json()["error"]["message"]
    assert tc.put("/v1/markets/nope/stations/s1", json={"name": "x", "hours": {}}).status_code == 404
    assert tc.delete("/v1/markets/m1/stations/s1").status_code == 204
    assert tc.delete("/v1/markets/m1/stations/s1").status_code == 404
    assert tc.delete("/v1/markets/m2").status_code == 204
    assert tc.get("/v1/markets/m2").status_code == 404
    actions = [r[0] for r in rows(tc.app.state.settings.database_url, "SELECT action FROM audit_log ORDER BY id")]
    assert actions.count("market.put") == 3 and "station.delete" in actions and "market.delete" in actions


def test_cli_market_and_station(db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                ) -> None:
    monkeypatch.setenv("RT_DATABASE_URL", db_dsn)
    assert cli_main(["market", "set", "WJ-X1", "--name-zh", "测试市场", "--kind", "wholesale",
                     "--region", TOWN_A, "--grid", "G7"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is True
    assert cli_main(["station", "set", "--market", "WJ-X1", "--station", "WJ-X1-S1", "--name", "快检室",
                     "--hours", "mon-fri=00:00-09:00", "--hours", "sat=01:00-08:00"]) == 0
    station = json.loads(capsys.readouterr().out)
    assert station["hours"] == {"mon": "00:00-09:00", "tue": "00:00-09:00", "wed": "00:00-09:00",
                                "thu": "00:00-09:00", "fri": "00:00-09:00", "sat": "01:00-08:00", "sun": None}
    assert cli_main(["station", "set", "--market", "WJ-X1", "--station", "s2", "--name", "x",
                     "--hours", "fri-mon=06:00-07:00"]) == 1
    assert "runs forward" in capsys.readouterr().err
    assert cli_main(["station", "set", "--market", "nope", "--station", "s2", "--name", "x"]) == 1
    assert cli_main(["market", "set", "WJ-X2", "--name-zh", "x", "--kind", "farmers", "--region", "320412000000"]) == 1
    capsys.readouterr()
    assert cli_main(["market", "show", "WJ-X1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == "wholesale" and shown["stations"][0]["station_id"] == "WJ-X1-S1"
    assert cli_main(["market", "seed-district"]) == 0
    assert json.loads(capsys.readouterr().out) == {"regions": 33, "markets": 47, "stations": 47}
    assert cli_main(["market", "seed-district"]) == 0  # idempotent
    capsys.readouterr()
    assert scalar(db_dsn, "SELECT count(*) FROM markets") == 48
    assert scalar(db_dsn, "SELECT name_zh FROM regions WHERE code = '320412101000'") == "湖塘镇"
    assert cli_main(["market", "remove", "WJ-X1"]) == 0
    assert scalar(db_dsn, "SELECT count(*) FROM stations WHERE market_id = 'WJ-X1'") == 0


def test_an_unregistered_market_is_stored_and_listed(
    settings: Settings, pipeline: Callable[..., Any], api_client: TestClient
) -> None:
    """A reading of a market the registry does not know goes through like any other."""
    assert api_client.put("/v1/markets/known", json=MARKET).status_code == 201
    pipeline("store", "flagger")
    known = reading_payload()
    stranger = reading_payload()
    dsn = settings.database_url or ""
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    ids = [known["reading_id"], stranger["reading_id"]]

    def judged() -> bool:  # these two only: a developer's shared broker may carry other runs' readings
        return scalar(dsn, "SELECT count(*) FROM verdicts WHERE reading_id::text = ANY(%s)", [ids]) == 2

    for _ in range(6):  # again until judged: a just-started bridge may not have subscribed yet (ids dedupe)
        publish(settings.mqtt_url or "", settings.mqtt_protocol, [
            (reading_topic("known", "s1", f"{ghost}-d1"), encode(known)),
            (reading_topic(ghost, "s9", f"{ghost}-d9"), encode(stranger)),
        ])
        try:
            wait_for(judged, timeout=15, what="both judged")
            break
        except AssertionError:
            continue
    assert judged()
    assert scalar(dsn, "SELECT market_id FROM readings WHERE reading_id = %s", [stranger["reading_id"]]) == ghost
    listed = {u["market_id"]: u for u in api_client.get("/v1/registry/unregistered-markets",
                                                          params={"limit": 1000}).json()["items"]}
    assert (listed[ghost]["devices"], listed[ghost]["tests"]) == (1, 1)
    assert "known" not in listed


def _names_of(tc: TestClient, group_by: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    body = tc.get("/v1/stats/pass-rate", params={"group_by": group_by, "bucket": "week",
                                                 "since": (T0 - timedelta(days=20)).isoformat(),
                                                 "until": (T0 + timedelta(days=1)).isoformat(), "limit": 1000}).json()
    for row in body["items"]:
        entry = out.setdefault(row["group"], {"tests": 0, "name": row.get("group_name")})
        entry["tests"] += row["tests"]
    return out


def test_pass_rate_by_town_village_and_grid_from_the_registry(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    data = ts._dataset(300)
    data += [{**d, "market_id": "m3"} for d in ts._dataset(40)]  # m3 is not registered
    for i, d in enumerate(data[300:]):
        d["payload"] = {**d["payload"], "reading_id": f"00000000-0000-4000-8000-{i:012d}"}
    ts._load(db_dsn, db_settings, clock, data)
    tc = client(REGULATOR)
    _register(tc)
    per_market = {m: sum(1 for d in data if d["market_id"] == m) for m in ("m1", "m2", "m3")}
    assert _names_of(tc, "town") == {TOWN_A: {"tests": per_market["m1"], "name": "湖塘镇"},
                                     TOWN_B: {"tests": per_market["m2"], "name": "牛塘镇"},
                                     "": {"tests": per_market["m3"], "name": None}}
    assert _names_of(tc, "village") == {TOWN_A: {"tests": per_market["m1"], "name": "湖塘镇"},
                                        VILLAGE_B: {"tests": per_market["m2"], "name": "青云村"},
                                        "": {"tests": per_market["m3"], "name": None}}
    grid = _names_of(tc, "grid")
    assert {k: v["tests"] for k, v in grid.items()} == {"G1": per_market["m1"], "G2": per_market["m2"],
                                                         "": per_market["m3"]}
    # the closure figures group the same way (failures joined on market id)
    body = tc.get("/v1/stats/pass-rate", params={"group_by": "town", "bucket": "week",
                                                 "since": (T0 - timedelta(days=20)).isoformat(),
                                                 "until": (T0 + timedelta(days=1)).isoformat()}).json()
    screen = sum(1 for d in data if d["verdict"] in ("positive", "suspicious"))
    assert sum(r["screen_failures"] for r in body["items"]) == screen
    # an operator's town figures cover only its markets
    mine = _names_of(client(OPERATOR), "town")
    assert mine == {TOWN_A: {"tests": per_market["m1"], "name": "湖塘镇"}}


def test_silence_counts_only_the_station_working_hours(
    db_dsn: str, db_settings: Settings, client: Callable[[Principal], TestClient]
) -> None:
    """A reader at a station open 00:00-09:00 (a wholesale market) is not silent in the afternoon; one
    at a station the registry does not know falls back to the default hours (06:00-18:00)."""
    tc = client(REGULATOR)
    assert tc.put("/v1/markets/m1", json={**MARKET, "kind": "wholesale"}).status_code == 201
    night = {d: "00:00-09:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    assert tc.put("/v1/markets/m1/stations/s1", json={"name": "夜市快检室", "hours": night}).status_code == 201
    start = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    clock = Clock(start)
    flagger = Flagger(db_settings, clock=clock)
    for i, (market, station, device) in enumerate([("m1", "s1", "d-night"), ("m9", "s9", "d-day")]):
        p = payload(1500, 1500, "negative")
        p["measured_at"] = start.isoformat()
        run_batch(flagger, db_dsn, [record(p, market=market, station=station, device=device, offset=i)])

    def silent_at(now: datetime) -> list[str]:
        conn = connect(db_dsn)
        try:
            return sorted(f.row["subject"] for f in flagger.silent(conn, now))
        finally:
            conn.close()

    assert silent_at(datetime(2026, 11, 28, 6, 0, tzinfo=UTC)) == ["d-day"]  # 14:00: the night station is closed
    # 01:30 the next night: quiet through 08:00-09:00 and 00:00-01:30 of the night station's hours
    assert silent_at(datetime(2026, 11, 28, 17, 30, tzinfo=UTC)) == ["d-night"]  # the day station is closed


@pytest.mark.parametrize(("kind", "local_hour"), [("wholesale", 8), ("farmers", 9), (None, 9)])
def test_posting_deadline_follows_the_market_kind(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient],
    kind: str | None, local_hour: int
) -> None:
    """A traced failure is due to be posted the next day at 08:00 (wholesale) or 09:00 (farmers'
    markets; and an unregistered market), local to the market."""
    tc = client(REGULATOR)
    if kind is not None:
        assert tc.put("/v1/markets/m1", json={**MARKET, "kind": kind}).status_code == 201
    run_batch(Flagger(db_settings, clock=clock), db_dsn, [record(payload(1000.0, 100.0, "positive"))])
    fid = str(scalar(db_dsn, "SELECT failure_id FROM failures WHERE kind = 'positive'"))
    for action in ("object", "lab_positive", "trace"):
        clock.advance(minutes=30)
        answer = tc.post(f"/v1/failures/{fid}/actions", json={"action": action, "note": "n",
                                                                "evidence": {"lab_report_no": "LAB-1"}})
        assert answer.status_code == 200, answer.text
    due = datetime.fromisoformat(tc.get(f"/v1/failures/{fid}").json()["due_at"])
    traced_local = clock.now.astimezone(ts.SH)
    want = (traced_local + timedelta(days=1)).replace(hour=local_hour, minute=0, second=0, microsecond=0)
    assert due == want
