"""psycopg2 errors become the project's at the storage boundary, with the cause chained."""

from __future__ import annotations

import psycopg2
import pytest

from schemas.errors import StorageRefused, StorageUnavailable
from storage.db import connect, transaction, with_database
from storage.pool import Database

pytestmark = pytest.mark.integration


def test_an_unreachable_server_is_a_retriable_storage_unavailable() -> None:
    with pytest.raises(StorageUnavailable) as caught:
        connect("postgresql://postgres@127.0.0.1:1/postgres", connect_timeout=2)
    assert caught.value.retriable and isinstance(caught.value.__cause__, psycopg2.OperationalError)


def test_a_refused_statement_rolls_back_and_is_a_storage_refused(db_dsn: str) -> None:
    conn = connect(db_dsn)
    try:
        with pytest.raises(StorageRefused) as caught, transaction(conn), conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE t (id int PRIMARY KEY)")
            cur.execute("INSERT INTO t VALUES (1), (1)")
        assert not caught.value.retriable and isinstance(caught.value.__cause__, psycopg2.IntegrityError)
        with conn.cursor() as cur:  # rolled back: the connection is usable again
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()


def test_the_pool_answers_unavailable_for_a_missing_database(db_dsn: str) -> None:
    database = Database(with_database(db_dsn, "rt_no_such_database"))
    with pytest.raises(StorageUnavailable) as caught:
        database.getconn()
    assert isinstance(caught.value.__cause__, psycopg2.OperationalError)
    with pytest.raises(StorageUnavailable, match="RT_DATABASE_URL"):
        Database(None).getconn()
