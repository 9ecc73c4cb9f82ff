"""PostgreSQL connections: one place that knows psycopg2."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

Connection = psycopg2.extensions.connection

_DBNAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StorageError(Exception):
    """A database operation failed; ``retriable`` says whether trying again can help."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


def connect(dsn: str, *, application_name: str = "rapidtrace", connect_timeout: int = 5) -> Connection:
    conn = psycopg2.connect(dsn, application_name=application_name, connect_timeout=connect_timeout)
    psycopg2.extras.register_uuid(conn_or_curs=conn)
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    conn.commit()
    return conn


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """Commit on success, roll back on any error (and re-raise it)."""
    try:
        yield conn
        conn.commit()
    except BaseException:
        if not conn.closed:
            conn.rollback()
        raise


def is_retriable(exc: BaseException) -> bool:
    """Connection loss and server shutdown can heal; bad SQL or bad data cannot."""
    return isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError) or (
        isinstance(exc, psycopg2.Error)
        and getattr(exc, "pgcode", None) is not None
        and str(exc.pgcode)[:2] in {"08", "53", "57", "40"}
    )


def with_database(dsn: str, dbname: str) -> str:
    """The same server DSN, pointed at another database."""
    params: dict[str, Any] = psycopg2.extensions.parse_dsn(dsn)
    params["dbname"] = dbname
    return psycopg2.extensions.make_dsn(**params)


def _admin(admin_dsn: str) -> Connection:
    conn = psycopg2.connect(admin_dsn, connect_timeout=5)
    conn.autocommit = True
    return conn


def create_database(admin_dsn: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_dsn`` (if missing); returns its DSN."""
    if not _DBNAME.match(name):
        raise ValueError(f"database name {name!r} must match {_DBNAME.pattern}")
    conn = _admin(admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return with_database(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    conn = _admin(admin_dsn)
    try:
        with conn.cursor() as cur:
            # WITH (FORCE) (PostgreSQL 13+) ends the sessions still connected to it
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()
