"""Typed dependencies of every route: database, settings, clock, principal, Kafka producer."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from fastapi import Depends, Request
from kafka import KafkaProducer
from psycopg2.pool import ThreadedConnectionPool

from api.errors import ApiError
from schemas.settings import Settings
from storage.db import Connection

# Pool connections do not go through storage.db.connect (which registers it): let every query take uuid.UUID
# parameters. Only the adapter is global; uuid columns still come back as text on pool connections.
psycopg2.extensions.register_adapter(uuid.UUID, psycopg2.extras.UUID_adapter)

Role = Literal["regulator", "operator", "producer"]


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str
    markets: frozenset[str] | None = None  # None: every market
    holder_id: str | None = None

    def sees_market(self, market_id: str | None) -> bool:
        return self.markets is None or (market_id is not None and market_id in self.markets)

    def market_filter(self) -> list[str] | None:
        """Markets to restrict a query to, or None for all."""
        return None if self.markets is None else sorted(self.markets)


ANONYMOUS_REGULATOR = Principal(role="regulator", name="anonymous (auth disabled)")


class Database:
    """A small connection pool, created on first use so the API starts without a database."""

    def __init__(self, dsn: str | None, maxconn: int = 16) -> None:
        self._dsn = dsn
        self._maxconn = maxconn
        self._pool: ThreadedConnectionPool | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ThreadedConnectionPool:
        if not self._dsn:
            raise ApiError(503, "unavailable", "no database is configured (RT_DATABASE_URL)")
        with self._lock:
            if self._pool is None:
                self._pool = ThreadedConnectionPool(1, self._maxconn, self._dsn, application_name="rapidtrace-api",
                                                    connect_timeout=3, options="-c timezone=UTC")
            return self._pool

    @property
    def dsn(self) -> str | None:
        return self._dsn

    def getconn(self) -> Connection:
        try:
            return self._get_pool().getconn()
        except psycopg2.pool.PoolError:
            raise ApiError(503, "unavailable", "all database connections are busy; retry shortly") from None
        except psycopg2.OperationalError as exc:
            raise ApiError(503, "unavailable", f"database unavailable: {str(exc).strip()[:200]}") from None

    def putconn(self, conn: Connection) -> None:
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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.closeall()


class Producer:
    """The API's Kafka producer (certificates), created on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def get(self) -> KafkaProducer:
        from ingest.kafka_out import make_producer

        with self._lock:
            if self._producer is None:
                try:
                    self._producer = make_producer(self._settings, client_id="rapidtrace-api")
                except Exception as exc:
                    raise ApiError(503, "unavailable", f"Kafka unavailable: {exc}") from None
            return self._producer

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Callable[[], datetime]:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


def get_db(request: Request) -> Iterator[Connection]:
    database: Database = request.app.state.database
    conn = database.getconn()
    try:
        yield conn
    except psycopg2.OperationalError as exc:
        raise ApiError(503, "unavailable", f"database unavailable: {str(exc).strip()[:200]}") from None
    finally:
        database.putconn(conn)


def get_producer(request: Request) -> KafkaProducer:
    producer: Producer = request.app.state.producer
    return producer.get()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
Db = Annotated[Connection, Depends(get_db)]
ProducerDep = Annotated[KafkaProducer, Depends(get_producer)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def get_principal(request: Request, settings: SettingsDep) -> Principal:
    if not settings.api_auth:
        return ANONYMOUS_REGULATOR
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)")
    from api.auth import resolve_principal

    database: Database = request.app.state.database
    conn = database.getconn()
    try:
        principal = resolve_principal(conn, token)
        conn.commit()
    finally:
        database.putconn(conn)
    if principal is None:
        raise ApiError(401, "unauthorized", "the bearer token is unknown or revoked")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, "forbidden", f"this needs the role {' or '.join(roles)}; you are {principal.role}")
        return principal

    return check
