"""A thread-safe PostgreSQL connection pool for the API, created on first use; errors in the project's tree."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2.pool import PoolError, ThreadedConnectionPool

from schemas.errors import StorageUnavailable
from storage.db import Connection, storage_error

# Pool connections do not go through storage.db.connect (which registers it): let every query take uuid.UUID
# parameters. Only the adapter is global; uuid columns still come back as text on pool connections.
psycopg2.extensions.register_adapter(uuid.UUID, psycopg2.extras.UUID_adapter)


class Database:
    """A small connection pool, created on first use so the API starts without a database."""

    def __init__(self, dsn: str | None, maxconn: int = 16) -> None:
        self._dsn = dsn
        self._maxconn = maxconn
        self._pool: ThreadedConnectionPool | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ThreadedConnectionPool:
        if not self._dsn:
            raise StorageUnavailable("no database is configured (RT_DATABASE_URL)")
        with self._lock:
            if self._pool is None:
                self._pool = ThreadedConnectionPool(1, self._maxconn, self._dsn, application_name="rapidtrace-api",
                                                    connect_timeout=3, options="-c timezone=UTC")
            return self._pool

    @property
    def dsn(self) -> str | None:
        return self._dsn

    def getconn(self) -> Connection:
        """A pooled connection; StorageUnavailable when the pool is full or the server cannot be reached."""
        try:
            return self._get_pool().getconn()
        except PoolError:
            raise StorageUnavailable("all database connections are busy; retry shortly") from None
        except psycopg2.Error as exc:
            raise storage_error(exc, "connect") from exc

    def putconn(self, conn: Connection) -> None:
        """Give a connection back, rolled back; a broken one is closed instead."""
        pool = self._pool
        if pool is None:
            return
        broken = conn.closed != 0
        if not broken:
            try:
                conn.rollback()
            except psycopg2.Error:
                broken = True
        pool.putconn(conn, close=broken)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A pooled connection for the block; psycopg2 errors escaping it become the project's StorageError."""
        conn = self.getconn()
        try:
            yield conn
        except psycopg2.Error as exc:
            raise storage_error(exc, "the request's query") from exc
        finally:
            self.putconn(conn)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.closeall()
