"""Typed dependencies of every route: database, settings, clock, principal, Kafka producer.

Errors raised here are the project's (``schemas/errors.py``); api/errors.py answers them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from api.auth import resolve_principal
from api.errors import ApiError
from domain.access import ANONYMOUS_REGULATOR, Principal, Role
from schemas.settings import Settings
from storage.db import Connection
from storage.pool import Database

if TYPE_CHECKING:  # the type only: the API reaches Kafka through ingest/kafka_out.py
    from kafka import KafkaProducer

__all__ = ["ANONYMOUS_REGULATOR", "ClockDep", "CurrentPrincipal", "Database", "Db", "Principal", "Producer",
           "ProducerDep", "Role", "SettingsDep", "get_principal", "require_role"]


class Producer:
    """The API's Kafka producer (certificates), created on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def get(self) -> KafkaProducer:
        from ingest.kafka_out import kafka_error, make_producer

        with self._lock:
            if self._producer is None:
                try:
                    self._producer = make_producer(self._settings, client_id="rapidtrace-api")
                except Exception as exc:  # not configured, no broker: KafkaUnavailable (503)
                    raise kafka_error(exc, "connecting the API's producer") from exc
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
    with database.connection() as conn:
        yield conn


def get_producer(request: Request) -> KafkaProducer:
    producer: Producer = request.app.state.producer
    return producer.get()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
Db = Annotated[Connection, Depends(get_db)]
ProducerDep = Annotated["KafkaProducer", Depends(get_producer)]


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
    database: Database = request.app.state.database
    with database.connection() as conn:
        principal = resolve_principal(conn, token)
        conn.commit()
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
