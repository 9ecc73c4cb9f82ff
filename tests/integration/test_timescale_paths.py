"""The two storage paths (issue 9): migrate on a server with TimescaleDB installed but not preloaded,
continuous aggregates and plain rollups giving the same answers (false-positive figures included),
and a lookup by reading_id touching one chunk.

These need the embedded PostgreSQL 18 with the TimescaleDB build installed (CI's TimescaleDB pass,
``python -m tests.timescale_pg``); elsewhere they skip with the reason.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_principal
from runtime.embedded import EmbeddedPostgres
from runtime.ports import free_port
from schemas.settings import Settings
from storage.db import connect
from storage.migrate import migrate
from tests import services
from tests.helpers import rows
from tests.integration import test_failures as tf
from tests.integration.test_stats import DIMENSIONS, _dataset, _load, _refresh_jobs
from tests.timescale_pg import need_timescale, timescaledb_installed

pytestmark = [pytest.mark.integration, pytest.mark.timescale]
clock = tf.clock


@pytest.fixture(scope="module")
def unpreloaded_admin_dsn() -> Iterator[str]:
    """An embedded PostgreSQL 18 that has the TimescaleDB files but does not preload the library."""
    if not timescaledb_installed():
        import os

        reason = "TimescaleDB is not installed in the embedded PostgreSQL 18 (python -m tests.timescale_pg installs it)"
        if os.environ.get("RT_TEST_TIMESCALE") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    work = Path(tempfile.mkdtemp(prefix="rt-test-nopreload-"))
    server = EmbeddedPostgres(work / "data", free_port(), log_dir=work)
    server.start()
    try:
        yield server.admin_dsn
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def plain_dsn(unpreloaded_admin_dsn: str) -> Iterator[str]:
    dsn, drop = services.fresh_database(unpreloaded_admin_dsn)
    try:
        yield dsn
    finally:
        drop()


def test_migrate_takes_the_plain_path_when_timescaledb_is_installed_but_not_preloaded(
    plain_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert rows(plain_dsn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") == [(1,)]
    with caplog.at_level(logging.INFO, logger="storage.migrate"):
        applied = migrate(plain_dsn, Settings())  # used to die with "connection already closed"
    assert applied and all(name.endswith("(plain)") for name in applied)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("plain PostgreSQL path" in m and "not preloaded" in m and "shared_preload_libraries" in m
               for m in said), said
    assert rows(plain_dsn, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == [(0,)]
    assert migrate(plain_dsn, Settings()) == []  # and every later run too
    assert {v for (v,) in rows(plain_dsn, "SELECT variant FROM schema_migrations")} == {"plain"}


def _api(dsn: str, clock: tf.Clock) -> TestClient:
    app = create_app(Settings(database_url=dsn, api_auth=False), clock=clock)
    app.dependency_overrides[get_principal] = lambda: tf.REGULATOR
    return TestClient(app)


def _settle(tc: TestClient, clock: tf.Clock, n: int) -> None:
    """Take the first ``n`` positive failures through a lab: every third lab-negative (false positive)."""
    found = tc.get("/v1/failures", params={"kind": "positive", "limit": n}).json()["items"]
    found.sort(key=lambda f: f["failure_id"])
    for i, f in enumerate(found):
        assert tc.post(f"/v1/failures/{f['failure_id']}/actions",
                       json={"action": "object", "note": "objects"}).status_code == 200
        lab = "lab_negative" if i % 3 == 0 else "lab_positive"
        assert tc.post(f"/v1/failures/{f['failure_id']}/actions",
                       json={"action": lab, "evidence": {"lab_report_no": f"LAB-{i}"}}).status_code == 200


def _answers(tc: TestClient) -> dict[str, Any]:
    span = {"since": (tf.T0 - timedelta(days=20)).isoformat(), "until": (tf.T0 + timedelta(days=1)).isoformat()}
    out: dict[str, Any] = {}
    for dim in DIMENSIONS:
        for bucket in ("hour", "day"):
            body = tc.get("/v1/stats/pass-rate", params={"group_by": dim, "bucket": bucket, "limit": 10000, **span})
            assert body.status_code == 200, body.text
            assert not body.json()["next_cursor"]
            out[f"{dim}/{bucket}"] = body.json()["items"]
    out["strip_lots"] = tc.get("/v1/strip-lots", params={**span, "limit": 1000}).json()["items"]
    out["devices"] = tc.get("/v1/devices", params={"limit": 1000}).json()["items"]
    return out


def test_continuous_aggregates_and_plain_rollups_give_the_same_answers(
    db_dsn: str, plain_dsn: str, clock: tf.Clock
) -> None:
    need_timescale(db_dsn, "comparing continuous aggregates with plain rollups")
    migrate(plain_dsn, Settings())
    data = _dataset(500)
    for dsn in (db_dsn, plain_dsn):
        _load(dsn, Settings(database_url=dsn), clock, data[:300])
    # the TimescaleDB side partly materialized, partly real-time, then late data below the watermark
    watermark = tf.T0 - timedelta(days=4)
    conn = connect(db_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for job in _refresh_jobs(db_dsn):
                cur.execute("SELECT alter_job(%s, scheduled => false)", (job,))
            for dim in [*DIMENSIONS, "strip_lot"]:
                cur.execute(f"CALL refresh_continuous_aggregate('pass_rate_{dim}_hourly', NULL, %s)", (watermark,))
    finally:
        conn.close()
    for dsn in (db_dsn, plain_dsn):
        _load(dsn, Settings(database_url=dsn), clock, data[300:])  # some of it below the watermark
    conn = connect(db_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for job in _refresh_jobs(db_dsn):  # the policies' own runs: late rows counted (the documented lag)
                cur.execute("CALL run_job(%s)", (job,))
    finally:
        conn.close()
    clock.advance(minutes=30)
    answers = []
    for dsn in (db_dsn, plain_dsn):
        with _api(dsn, clock) as tc:
            _settle(tc, clock, 12)
            answers.append(_answers(tc))
    timescale, plain = answers
    assert sum(r["false_positives"] for r in plain["market/day"]) == 4  # 12 settled, every third negative
    assert sum(r["confirmed_positives"] for r in plain["market/day"]) == 8
    assert any(lot["false_positive_rate"] for lot in plain["strip_lots"])
    for key in plain:
        assert timescale[key] == plain[key], key


def test_a_lookup_by_reading_id_touches_one_chunk(db_dsn: str, clock: tf.Clock) -> None:
    need_timescale(db_dsn, "counting chunks")
    data = _dataset(300)  # nine days: nine or ten daily chunks
    _load(db_dsn, Settings(database_url=db_dsn), clock, data)
    chunks = rows(db_dsn, "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'")
    assert chunks[0][0] >= 9
    rid = data[150]["payload"]["reading_id"]
    from storage.readings import get_reading_at, locate

    conn = connect(db_dsn)
    try:
        at = locate(conn, rid)
        assert at is not None and get_reading_at(conn, rid, at) is not None
        with conn.cursor() as cur:
            cur.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM readings r "
                "LEFT JOIN verdicts v ON v.reading_id = r.reading_id AND v.measured_at = r.measured_at "
                "AND v.measured_at = %s WHERE r.reading_id = %s::uuid AND r.measured_at = %s",
                (at, rid, at),
            )
            plan = cur.fetchone()[0]  # type: ignore[index]
    finally:
        conn.close()
    scanned = set()

    def walk(node: dict[str, Any]) -> None:
        name = node.get("Relation Name", "")
        if "_chunk" in name and node.get("Actual Loops", 0):
            scanned.add(name)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    assert 1 <= len(scanned) <= 2, scanned  # one chunk of readings (and one of verdicts), not every chunk

