"""Pass-rate statistics: the API against an independent count, and the two storage paths agreeing.

Plain PostgreSQL keeps hourly rollup tables by trigger; TimescaleDB serves the
same names from continuous aggregates.  Whichever path this server has is
checked against the Python ground truth and against the aggregates' defining
query run on ``verdicts``; the TimescaleDB-only checks (materialized part,
watermark, refresh policy, hypertables) skip with the reason when the
extension is absent.  On TimescaleDB the refresh policies are paused for the
tests, which run them by hand: a background refresh between two loaded batches
would move the watermark past rows not yet loaded, and those count only after
the next refresh (the documented lag), so exact counts would depend on timing.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2.errors
import pytest
from fastapi.testclient import TestClient

from api.deps import Principal
from consumers.flagger import Flagger
from consumers.reading_store import ReadingStore
from schemas.reading import Verdict
from schemas.settings import Settings
from simulators.faults import make_lines
from storage.db import connect
from storage.stats import COUNTS
from tests.helpers import rows
from tests.integration import test_failures as tf
from tests.integration.test_failures import OPERATOR, REGULATOR, T0, Clock, payload, record, run_batch
from tests.timescale_pg import need_timescale

pytestmark = pytest.mark.integration

# shared fixtures
client = tf.client
clock = tf.clock
db_settings = tf.db_settings

SH = ZoneInfo("Asia/Shanghai")
DIMENSIONS = {
    "market": "market_id",
    "station": "station_id",
    "analyte": "analyte",
    "commodity": "commodity",
    "region": "region_code",
}
WEIGHTS = [(Verdict.NEGATIVE, 0.85), (Verdict.POSITIVE, 0.05), (Verdict.SUSPICIOUS, 0.04), (Verdict.INVALID, 0.06)]


def _timescale(dsn: str) -> bool:
    return bool(rows(dsn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"))


def _autocommit(dsn: str, *statements: tuple[str, list[Any]]) -> None:
    """Run statements outside a transaction block (refreshing a continuous aggregate needs that)."""
    conn = connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for sql, params in statements:
                cur.execute(sql, params)
    finally:
        conn.close()


def _refresh_jobs(dsn: str) -> list[int]:
    return [
        r[0]
        for r in rows(
            dsn,
            "SELECT job_id FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_refresh_continuous_aggregate' ORDER BY job_id",
        )
    ]


@pytest.fixture(autouse=True)
def _policies_paused(db_dsn: str) -> None:
    """On TimescaleDB, keep the background scheduler from refreshing mid-test (see the module doc)."""
    if _timescale(db_dsn):
        jobs = _refresh_jobs(db_dsn)
        # one refresh policy per continuous aggregate: the five dimensions and the strip lots (0005)
        assert len(jobs) == len(DIMENSIONS) + 1, f"one refresh policy per continuous aggregate, found {jobs}"
        _autocommit(db_dsn, *(("SELECT alter_job(%s, scheduled => false)", [job]) for job in jobs))


def _dataset(n: int = 600) -> list[dict[str, Any]]:
    rng = random.Random(11)
    start = T0 - timedelta(days=9)
    out = []
    for _ in range(n):
        verdict = rng.choices([v for v, _ in WEIGHTS], [w for _, w in WEIGHTS])[0]
        c, t = make_lines(verdict, rng)
        p = payload(c, t, verdict.value, analyte=rng.choice(["chlorpyrifos", "clenbuterol", "procymidone"]))
        p["sample"] = {
            **p["sample"],
            "commodity": rng.choice(["韭菜", "猪肉", "芹菜"]),
            "region_code": rng.choice(["320412", "320411"]),
        }
        p["measured_at"] = (start + timedelta(minutes=rng.randrange(0, 9 * 24 * 60))).isoformat()
        market = rng.choice(["m1", "m2"])
        out.append(
            {"payload": p, "market_id": market, "station_id": f"{market}-s{rng.randrange(2)}", "verdict": verdict.value}
        )
    return out


def _load(dsn: str, settings: Settings, clock: Clock, data: list[dict[str, Any]]) -> None:
    """Store (readings) and judge (verdicts, failures) the data, 100 a batch."""
    flagger, store = Flagger(settings, clock=clock), ReadingStore(settings)
    for start in range(0, len(data), 100):
        batch = [
            record(d["payload"], market=d["market_id"], station=d["station_id"], offset=start + i)
            for i, d in enumerate(data[start : start + 100])
        ]
        conn = connect(dsn)
        try:
            store.handle(conn, batch)
            conn.commit()
        finally:
            conn.close()
        run_batch(flagger, dsn, batch)


def _bucket(at: datetime, bucket: str) -> datetime:
    local = at.astimezone(SH)
    if bucket == "hour":
        return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    return day.astimezone(UTC)


def _key(d: dict[str, Any], group_by: str) -> str:
    p = d["payload"]
    return {
        "market": d["market_id"],
        "station": d["station_id"],
        "analyte": p["assay"]["analyte"],
        "commodity": p["sample"]["commodity"],
        "region": p["sample"]["region_code"],
    }[group_by]


def expected(data: list[dict[str, Any]], group_by: str, bucket: str) -> dict[tuple[datetime, str], dict[str, int]]:
    out: dict[tuple[datetime, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in data:
        counts = out[(_bucket(datetime.fromisoformat(d["payload"]["measured_at"]), bucket), _key(d, group_by))]
        counts["tests"] += 1
        counts[d["verdict"]] += 1
    return out


def answered(tc: TestClient, group_by: str, bucket: str) -> dict[tuple[datetime, str], dict[str, int]]:
    params: dict[str, str | int] = {
        "group_by": group_by,
        "bucket": bucket,
        "since": (T0 - timedelta(days=20)).isoformat(),
        "until": T0.isoformat(),
        "limit": 150,
    }
    out: dict[tuple[datetime, str], dict[str, int]] = {}
    while True:
        page = tc.get("/v1/stats/pass-rate", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        for row in body["items"]:
            counts = {
                "tests": row["tests"],
                "negative": row["negative"],
                **{k: v for k, v in row["failures_by_kind"].items() if k in ("positive", "suspicious", "invalid")},
            }
            assert row["pass_rate"] == (round(row["negative"] / row["valid_tests"], 6) if row["valid_tests"] else None)
            out[(datetime.fromisoformat(row["bucket_start"]), row["group"])] = {k: v for k, v in counts.items() if v}
        if not body["next_cursor"]:
            return out
        params["cursor"] = body["next_cursor"]


@pytest.mark.parametrize(
    ("group_by", "bucket"),
    [("market", "day"), ("station", "hour"), ("analyte", "week"), ("commodity", "day"), ("region", "day")],
)
def test_pass_rate_matches_an_independent_count(
    db_dsn: str,
    db_settings: Settings,
    clock: Clock,
    client: Callable[[Principal], TestClient],
    group_by: str,
    bucket: str,
) -> None:
    data = _dataset()
    _load(db_dsn, db_settings, clock, data)
    want = {k: {n: c for n, c in v.items() if c} for k, v in expected(data, group_by, bucket).items()}
    assert answered(client(REGULATOR), group_by, bucket) == want


def test_scope_and_closure_rate(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    data = _dataset(200)
    _load(db_dsn, db_settings, clock, data)
    m1 = answered(client(OPERATOR), "market", "day")
    assert m1 and {g for _, g in m1} == {"m1"}
    fid, rid = rows(
        db_dsn,
        "SELECT failure_id::text, reading_id::text FROM failures WHERE kind = 'suspicious' AND market_id = 'm1' "
        "ORDER BY failure_id LIMIT 1",
    )[0]
    screened = next(d for d in data if d["payload"]["reading_id"] == rid)
    retest = tf.payload(1000.0, 1200.0, "negative", analyte=screened["payload"]["assay"]["analyte"])
    retest["sample"] = screened["payload"]["sample"]
    retest["measured_at"] = (datetime.fromisoformat(screened["payload"]["measured_at"]) + timedelta(minutes=10)
                             ).isoformat()
    _load(db_dsn, db_settings, clock, [{**screened, "payload": retest, "verdict": "negative"}])
    clock.advance(minutes=30)
    tc = client(OPERATOR)
    answer = tc.post(
        f"/v1/failures/{fid}/actions",
        json={"action": "retest_negative", "note": "2nd strip neg",
              "evidence": {"retest_reading_id": retest["reading_id"]}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "released" and answer.json()["outcome"] == "released_on_retest"
    clock.advance(hours=2)
    assert (
        client(REGULATOR)
        .post(f"/v1/failures/{fid}/actions", json={"action": "close", "note": "false positive"})
        .status_code
        == 200
    )
    body = (
        client(REGULATOR)
        .get(
            "/v1/stats/pass-rate",
            params={
                "group_by": "market",
                "bucket": "week",
                "since": (T0 - timedelta(days=1)).isoformat(),
                "until": (T0 + timedelta(hours=3)).isoformat(),
                "market_id": "m1",
            },
        )
        .json()
    )
    row = body["items"][0]
    screen = rows(
        db_dsn, "SELECT count(*) FROM failures WHERE market_id = 'm1' AND kind IN ('positive', 'suspicious')"
    )[0][0]
    assert row["screen_failures"] == screen and row["closed"] == 1
    assert row["closure_rate"] == round(1 / screen, 6) and row["median_hours_to_close"] == 2.5
    other = client(OPERATOR).get("/v1/stats/pass-rate", params={"market_id": "m2"}).json()
    assert other["items"] == []


def _definition_rows(dsn: str, dim: str) -> set[tuple[Any, ...]]:
    """The continuous aggregates' defining query, run directly on verdicts."""
    key = "" if dim == "market" else f", {DIMENSIONS[dim]}"
    sums = ", ".join(
        f"sum(CASE WHEN {c} THEN 1 ELSE 0 END)"
        for c in (
            "server_result = 'negative'",
            "server_result = 'positive'",
            "server_result = 'suspicious'",
            "server_result = 'invalid'",
            "verdict_mismatch",
            "cutoff_mismatch",
        )
    )
    return set(
        rows(
            dsn,
            f"SELECT date_bin(INTERVAL '1 hour', measured_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b, "
            f"market_id{key}, count(*), {sums} FROM verdicts GROUP BY b, market_id{key}",
        )
    )


def _relation_rows(dsn: str, dim: str) -> set[tuple[Any, ...]]:
    key = "" if dim == "market" else f", {DIMENSIONS[dim]}"
    return set(rows(dsn, f"SELECT bucket, market_id{key}, {', '.join(COUNTS)} FROM pass_rate_{dim}_hourly"))


@pytest.mark.parametrize("dim", list(DIMENSIONS))
def test_hourly_relations_equal_their_definition(db_dsn: str, db_settings: Settings, clock: Clock, dim: str) -> None:
    """Plain rollups (or real-time continuous aggregates) hold exactly what the aggregate query gives,
    and a redelivered batch counts nothing twice."""
    data = _dataset(300)
    _load(db_dsn, db_settings, clock, data)
    first = _relation_rows(db_dsn, dim)
    assert first == _definition_rows(db_dsn, dim)
    _load(db_dsn, db_settings, clock, data[:150])  # redelivered
    assert _relation_rows(db_dsn, dim) == first
    assert sum(r[-len(COUNTS)] for r in first) == len(data)


def test_verdicts_are_append_only(db_dsn: str, db_settings: Settings, clock: Clock) -> None:
    """On both paths: the rollups and the continuous aggregates count each verdict once, as it was."""
    _load(db_dsn, db_settings, clock, _dataset(5))
    for statement in ("UPDATE verdicts SET server_result = 'negative'", "DELETE FROM verdicts"):
        # the table's name, not a TimescaleDB chunk's (_hyper_2_1_chunk)
        with pytest.raises(psycopg2.errors.RestrictViolation, match=r"^verdicts is append-only"):
            _autocommit(db_dsn, (statement, []))
    assert rows(db_dsn, "SELECT count(*) FROM verdicts") == [(5,)]


def _timescale_layout(dsn: str) -> None:
    """What the .timescale.sql migrations are meant to leave behind."""
    hypertables = rows(
        dsn,
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = 'public' ORDER BY 1",
    )
    assert hypertables == [("readings", True), ("verdicts", False)]
    policies = rows(
        dsn,
        "SELECT proc_name, coalesce(hypertable_name, '') FROM timescaledb_information.jobs "
        "WHERE proc_name IN ('policy_compression', 'policy_retention') ORDER BY 1",
    )
    assert policies == [("policy_compression", "readings"), ("policy_retention", "readings")]  # none on verdicts
    caggs = rows(
        dsn,
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates ORDER BY 1",
    )
    assert caggs == sorted([(f"pass_rate_{dim}_hourly", False) for dim in [*DIMENSIONS, "strip_lot"]])
    configs = rows(
        dsn,
        "SELECT config->>'start_offset', (config->>'end_offset')::interval, schedule_interval "
        "FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'",
    )
    assert configs == [(None, timedelta(hours=1), timedelta(minutes=5))] * (len(DIMENSIONS) + 1)
    triggers = rows(dsn, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'verdicts'::regclass AND NOT tgisinternal")
    assert "verdicts_pass_rate_rollup" not in {t for (t,) in triggers}  # the plain path's rollup trigger


@pytest.mark.timescale
def test_timescale_materialized_and_realtime_agree(
    db_dsn: str, db_settings: Settings, clock: Clock, client: Callable[[Principal], TestClient]
) -> None:
    need_timescale(db_dsn, "the materialized/real-time check")
    _timescale_layout(db_dsn)
    data = sorted(_dataset(400), key=lambda d: d["payload"]["measured_at"])
    boundary = _bucket(datetime.fromisoformat(data[200]["payload"]["measured_at"]), "hour")
    older = [d for d in data if datetime.fromisoformat(d["payload"]["measured_at"]) < boundary]
    newer = data[len(older) :]
    late, older = older[0], older[1:]  # the oldest reading arrives last, days late
    _load(db_dsn, db_settings, clock, older)
    _autocommit(
        db_dsn,
        *((f"CALL refresh_continuous_aggregate('pass_rate_{dim}_hourly', NULL, %s)", [boundary]) for dim in DIMENSIONS),
    )  # materialized up to the boundary: the watermark
    _load(db_dsn, db_settings, clock, newer)  # past the watermark: served by real-time aggregation
    for dim in DIMENSIONS:
        assert _relation_rows(db_dsn, dim) == _definition_rows(db_dsn, dim), f"real-time part of {dim}"

    _load(db_dsn, db_settings, clock, [late])  # below the watermark: invalidates a materialized bucket
    assert _relation_rows(db_dsn, "market") != _definition_rows(db_dsn, "market"), (
        "a late reading below the watermark should wait for the refresh policy; "
        "if it is visible at once the aggregates are not materialized at all"
    )
    _autocommit(db_dsn, *(("CALL run_job(%s)", [job]) for job in _refresh_jobs(db_dsn)))  # the policy's own run
    for dim in DIMENSIONS:
        assert _relation_rows(db_dsn, dim) == _definition_rows(db_dsn, dim), f"after the refresh policy of {dim}"
    want = {k: {n: c for n, c in v.items() if c} for k, v in expected(data, "market", "day").items()}
    assert answered(client(REGULATOR), "market", "day") == want
