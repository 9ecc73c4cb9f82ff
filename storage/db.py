"""PostgreSQL connections: one place that knows psycopg2, and the boundary where its errors become ours.

:func:`storage_error` turns a psycopg2 error into the project's tree (``schemas/errors.py``):
connection loss, server shutdown, too many connections, deadlock and serialization failures
are a retriable :class:`StorageUnavailable`; anything else a :class:`StorageRefused`. Raise it
``from`` the original so the cause stays in the traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from schemas.errors import StorageError, StorageRefused, StorageUnavailable

Connection = psycopg2.extensions.connection

_DBNAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


#: SQLSTATE classes that heal on their own: connection exception, insufficient resources,
#: operator intervention (shutdown), transaction rollback (deadlock, serialization failure).
_RETRIABLE_CLASSES = frozenset({"08", "53", "57", "40"})


def is_retriable(exc: BaseException) -> bool:
    """Connection loss and server shutdown can heal; bad SQL or bad data cannot."""
    if isinstance(exc, StorageError):
        return exc.retriable
    return isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError) or (
        isinstance(exc, psycopg2.Error)
        and getattr(exc, "pgcode", None) is not None
        and str(exc.pgcode)[:2] in _RETRIABLE_CLASSES
    )


def storage_error(exc: psycopg2.Error, doing: str = "the database operation") -> StorageError:
    """The project's error for a psycopg2 one (``raise storage_error(e) from e``)."""
    text = (getattr(exc, "pgerror", None) or str(exc)).strip()[:300] or type(exc).__name__
    if is_retriable(exc):
        return StorageUnavailable(f"database unavailable during {doing}: {text}")
    return StorageRefused(f"the database refused {doing}: {text}")


@contextmanager
def translated(doing: str = "the database operation") -> Iterator[None]:
    """Re-raise psycopg2 errors from the block as :func:`storage_error` (cause chained)."""
    try:
        yield
    except psycopg2.Error as exc:
        raise storage_error(exc, doing) from exc


@contextmanager
def savepoint(conn: Connection, name: str) -> Iterator[None]:
    """A savepoint in the open transaction: released when the block ends, rolled back to when it raises
    (the transaction itself goes on, with what was written before the savepoint)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SAVEPOINT {}").format(sql.Identifier(name)))
    try:
        yield
    except BaseException:
        if not conn.closed:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(name)))
        raise
    with conn.cursor() as cur:
        cur.execute(sql.SQL("RELEASE SAVEPOINT {}").format(sql.Identifier(name)))


def dict_rows(cur: Any) -> list[dict[str, Any]]:
    """The cursor's remaining rows as dicts keyed by column name."""
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def connect(dsn: str, *, application_name: str = "rapidtrace", connect_timeout: int = 5) -> Connection:
    """A connection in UTC that takes uuid.UUID parameters; StorageUnavailable when the server cannot be reached."""
    try:
        conn = psycopg2.connect(dsn, application_name=application_name, connect_timeout=connect_timeout)
    except psycopg2.Error as exc:
        raise storage_error(exc, "connect") from exc
    psycopg2.extras.register_uuid(conn_or_curs=conn)
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    conn.commit()
    return conn


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """Commit on success, roll back on any error and re-raise it; psycopg2 errors as :func:`storage_error`."""
    try:
        yield conn
        conn.commit()
    except BaseException as exc:
        if not conn.closed:
            with suppress(psycopg2.Error):  # the connection broke: the server rolls back on its own
                conn.rollback()
        if isinstance(exc, psycopg2.Error):
            raise storage_error(exc, "the transaction") from exc
        raise


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
