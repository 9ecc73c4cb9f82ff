"""One reading per reading_id (issue 9, defects 6 and 7): MQTT in, rows, dead letters and API answers out."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration


def _variants(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    later = copy.deepcopy(base)
    later["measured_at"] = "2026-11-28T09:15:03+08:00"  # an hour after the first
    other_content = copy.deepcopy(base)
    other_content["signal"]["t_line"] = 200.0  # same time, another strip
    return {"same": copy.deepcopy(base), "later": later, "other_content": other_content}


# (variant re-sent after the first, is it a conflict, what the dead letter's reason names)
CASES = [
    ("same", False, ()),
    ("later", True, ("2026-11-28T00:15:03+00:00", "2026-11-28T01:15:03+00:00", "different measured_at")),
    ("other_content", True, ("2026-11-28T00:15:03+00:00", "different payload")),
]


def test_the_same_id_is_one_reading_and_a_conflicting_resend_a_dead_letter(
    settings: Any, pipeline: Any, mqtt_broker: Any, api_client: Any
) -> None:
    pipeline("store", "flagger", "deadletters")
    dsn = settings.database_url
    bases = [reading_payload() for _ in CASES]
    first = [(reading_topic(), encode(b)) for b in bases]
    resent = [(reading_topic(), encode(_variants(b)[name])) for b, (name, _, _) in zip(bases, CASES, strict=True)]
    publish(mqtt_broker.url, mqtt_broker.protocol, first)
    ids = [b["reading_id"] for b in bases]
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM readings WHERE reading_id = ANY(%s::uuid[])", [ids]) == 3,
             what="the first three readings")
    publish(mqtt_broker.url, mqtt_broker.protocol, resent)
    marker = reading_payload()
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(), encode(marker))])
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM verdicts WHERE reading_id = %s", [marker["reading_id"]]),
             what="the marker judged")
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM deadletters WHERE code = 'reading_conflict'") == 2,
             what="two reading_conflict dead letters")
    letters = [r[0] for r in rows(dsn, "SELECT reason FROM deadletters WHERE code = 'reading_conflict'")]
    for base, (name, conflict, named) in zip(bases, CASES, strict=True):
        rid = base["reading_id"]
        assert scalar(dsn, "SELECT count(*) FROM readings WHERE reading_id = %s", [rid]) == 1, name
        assert scalar(dsn, "SELECT count(*) FROM verdicts WHERE reading_id = %s", [rid]) == 1, name
        mine = [r for r in letters if rid in r]
        assert len(mine) == (1 if conflict else 0), (name, letters)
        for text in named:
            assert text in mine[0], (name, mine[0])
        got = api_client.get(f"/v1/readings/{rid}").json()
        assert got["measured_at"].startswith("2026-11-28T00:15:03"), name  # the first one stays the reading
        assert got["c_line"] == 1532.0 and got["t_line"] == 1502.0
    assert api_client.get("/v1/readings/00000000-0000-0000-0000-000000000000").status_code == 404


def test_migration_backfills_reading_ids(db_dsn: str) -> None:
    """The 0005 backfill over rows stored before it: one row per id, the first stored one's time."""
    from storage.db import connect
    from storage.migrate import MIGRATIONS_DIR

    text = (MIGRATIONS_DIR / "0005_verdicts_failures.sql").read_text()
    start = text.index("INSERT INTO reading_ids")
    backfill = text[start : text.index(";", start) + 1]
    a, b = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
    stored = [(a, "2026-11-01T00:00:00Z"), (b, "2026-11-03T00:00:00Z"), (b, "2026-11-02T00:00:00Z")]
    conn = connect(db_dsn)
    try:
        with conn.cursor() as cur:
            for n, (rid, at) in enumerate(stored):
                cur.execute(
                    "INSERT INTO readings (reading_id, measured_at, received_at, market_id, station_id, device_id,"
                    " commodity, analyte, method, strip_lot, raw) VALUES (%s, %s, now(), 'm', 's', 'd', 'c', 'a',"
                    " 'colloidal_gold', 'l', %s)",
                    (rid, at, f'{{"n": {n}}}'),
                )
            cur.execute(backfill)
        conn.commit()
    finally:
        conn.close()
    got = rows(db_dsn, "SELECT reading_id::text, measured_at FROM reading_ids ORDER BY 1")
    assert [(r, m.isoformat()) for r, m in got] == [
        (a, "2026-11-01T00:00:00+00:00"), (b, "2026-11-03T00:00:00+00:00")]


def test_claims_inside_one_batch_first_wins_and_the_rest_are_checked(db_dsn: str) -> None:
    """The store's write of one batch: every id new needs no conflict check; an id twice in one batch is
    a redelivery when it is the same reading and a conflict (nothing written) when it is another one."""
    from consumers.reading_store import row
    from consumers.records import parse_reading
    from consumers.testing import record
    from ingest.route import Accepted, route
    from schemas.common import utc_now
    from storage.copy_text import copy_buffer
    from storage.db import connect
    from storage.readings import store_readings

    def records(*payloads: dict[str, Any]) -> list[Any]:
        out = []
        for i, p in enumerate(payloads):
            routed = route(reading_topic(), encode(p), utc_now())
            assert isinstance(routed, Accepted)
            out.append(row(parse_reading(record("rt.readings.v1", routed.value, headers=routed.headers)), i))
        return out

    base = reading_payload()
    variants = _variants(base)
    conn = connect(db_dsn)
    try:
        assert store_readings(conn, copy_buffer(records(base, reading_payload()))) == (2, [])
        conn.commit()
        fresh = reading_payload()
        inserted, conflicts = store_readings(conn, copy_buffer(records(fresh, variants["same"])))
        assert (inserted, conflicts) == (1, [])  # the known id re-sent as it was: a redelivery
        conn.commit()
        twice = reading_payload()
        later = {**twice, "measured_at": "2026-11-28T09:15:03+08:00"}
        inserted, conflicts = store_readings(conn, copy_buffer(records(twice, later)))
        assert inserted == 0 and [(str(c.reading_id), c.ord, c.same_time) for c in conflicts] == [
            (twice["reading_id"], 1, False)]
        conn.rollback()
        inserted, conflicts = store_readings(conn, copy_buffer(records(variants["other_content"])))
        assert inserted == 0 and [(c.ord, c.same_time) for c in conflicts] == [(0, True)]
        conn.rollback()
    finally:
        conn.close()
    assert scalar(db_dsn, "SELECT count(*) FROM readings") == 3
    assert scalar(db_dsn, "SELECT count(*) FROM reading_ids") == 3
