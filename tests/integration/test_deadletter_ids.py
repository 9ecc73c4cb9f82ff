"""Dead letters are keyed by their id, never by a Kafka position (migration 0007)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from consumers.deadletter_store import DeadletterStore
from schemas.deadletter import content_id, deadletter_value
from schemas.settings import Settings
from storage.db import connect
from storage.migrate import MIGRATIONS_DIR, migrate
from tests import services
from tests.helpers import rows, scalar

pytestmark = pytest.mark.integration


def _record(value: bytes, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic="rt.deadletter.v1", partition=0, leader_epoch=-1, offset=offset,
                          timestamp=1_764_000_000_000, timestamp_type=0, key=b"k", value=value, headers=[],
                          checksum=None, serialized_key_size=1, serialized_value_size=len(value),
                          serialized_header_size=-1)


def _store(dsn: str, records: list[ConsumerRecord]) -> None:
    conn = connect(dsn)
    try:
        DeadletterStore(Settings()).handle(conn, records)
        conn.commit()
    finally:
        conn.close()


def test_a_log_that_starts_over_does_not_drop_new_dead_letters(db_dsn):
    first = [_record(deadletter_value("mqtt", "t", b"{", "not_json", f"run 1 #{i}"), i) for i in range(3)]
    _store(db_dsn, first)
    _store(db_dsn, first)  # redelivered: still three
    assert scalar(db_dsn, "SELECT count(*) FROM deadletters") == 3
    # a second run on a fresh log: the same offsets, new dead letters
    _store(db_dsn, [_record(deadletter_value("mqtt", "t", b"{", "not_json", f"run 2 #{i}"), i) for i in range(3)])
    assert scalar(db_dsn, "SELECT count(*) FROM deadletters") == 6
    # a record on the topic that is no dead letter of ours: stored once, however often it is read
    _store(db_dsn, [_record(b"\xff junk", 0)])
    _store(db_dsn, [_record(b"\xff junk", 7)])
    assert scalar(db_dsn, "SELECT count(*) FROM deadletters WHERE code = 'unreadable_deadletter'") == 1


def test_stored_v1_rows_get_the_id_a_v1_value_read_again_gets(pg_admin_dsn, tmp_path):
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) < 7:
            shutil.copy(path, tmp_path / path.name)
    dsn, drop = services.fresh_database(pg_admin_dsn)
    try:
        migrate(dsn, Settings(), directory=tmp_path)
        when = datetime(2026, 11, 28, 8, 15, 3, 123456, tzinfo=UTC)
        conn = connect(dsn)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO deadletters (received_at, source, source_topic, code, reason, raw, kafka_topic,"
                        " kafka_partition, kafka_offset) VALUES (%s, 'mqtt', 'rt/ü', 'not_json', 'reason ü', %s,"
                        " 'rt.deadletter.v1', 0, 0)", (when, b"\x00{\xff"))
        conn.commit()
        conn.close()
        migrate(dsn, Settings())
        (stored,) = rows(dsn, "SELECT deadletter_id FROM deadletters")[0]
        assert str(stored) == str(content_id("mqtt", "rt/ü", "not_json", "reason ü", b"\x00{\xff", when))
    finally:
        drop()
