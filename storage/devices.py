"""SQL for the device registry: MQTT accounts of readers and of the bridge (table ``mqtt_accounts``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2

from domain.device_acl import MqttAccount
from schemas.errors import Conflict
from storage.db import Connection
from storage.where import Where

_COLUMNS = ("username, kind, market_id, station_id, device_id, created_at, created_by, rotated_at, "
            "revoked_at, revoked_by")


class DeviceExists(Conflict):
    """An active account with this device id (or username) is already registered."""


@dataclass(frozen=True)
class AccountRecord:
    """A registry row as shown to administrators (never the hash)."""

    username: str
    kind: str
    market_id: str | None
    station_id: str | None
    device_id: str | None
    created_at: datetime
    created_by: str
    rotated_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    active: bool  # not revoked

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _record(row: tuple[Any, ...]) -> AccountRecord:
    (username, kind, market_id, station_id, device_id, created_at, created_by, rotated_at, revoked_at,
     revoked_by) = row
    return AccountRecord(username, kind, market_id, station_id, device_id, created_at, created_by, rotated_at,
                         revoked_at, revoked_by, active=revoked_at is None)


def get_account(conn: Connection, username: str) -> AccountRecord | None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM mqtt_accounts WHERE username = %s", (username,))
        row = cur.fetchone()
    return _record(row) if row else None


def password_hash_of(conn: Connection, username: str) -> str | None:
    """The stored hash of an active account, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT password_hash FROM mqtt_accounts WHERE username = %s AND revoked_at IS NULL",
                    (username,))
        row = cur.fetchone()
    return str(row[0]) if row else None


@contextmanager
def _taken(device_id: str) -> Iterator[None]:
    """A unique or check constraint refusing the account: DeviceExists, naming the constraint's message."""
    try:
        yield
    except psycopg2.IntegrityError as exc:
        raise DeviceExists(f"cannot register {device_id}: {(exc.pgerror or str(exc)).strip()}") from exc


def register_device(conn: Connection, market_id: str, station_id: str, device_id: str, password_hash: str,
                    actor: str) -> AccountRecord:
    """Add a reader, or reinstate a revoked one with new credentials; DeviceExists if it is active."""
    with conn.cursor() as cur, _taken(device_id):
        cur.execute(
            f"""INSERT INTO mqtt_accounts (username, kind, market_id, station_id, device_id, password_hash, created_by)
                VALUES (%(d)s, 'device', %(m)s, %(s)s, %(d)s, %(h)s, %(a)s)
                ON CONFLICT (username) DO UPDATE
                   SET market_id = EXCLUDED.market_id, station_id = EXCLUDED.station_id,
                       password_hash = EXCLUDED.password_hash, rotated_at = now(),
                       revoked_at = NULL, revoked_by = NULL
                 WHERE mqtt_accounts.revoked_at IS NOT NULL AND mqtt_accounts.kind = 'device'
                RETURNING {_COLUMNS}""",
            {"d": device_id, "m": market_id, "s": station_id, "h": password_hash, "a": actor},
        )
        row = cur.fetchone()
    if row is None:
        raise DeviceExists(f"{device_id} is already registered and active; revoke it or rotate its password")
    return _record(row)


def upsert_bridge(conn: Connection, username: str, password_hash: str, actor: str) -> AccountRecord:
    """Create the bridge account or give it a new password; DeviceExists if a device holds the name."""
    with conn.cursor() as cur:
        cur.execute(
            f"""INSERT INTO mqtt_accounts (username, kind, password_hash, created_by)
                VALUES (%s, 'bridge', %s, %s)
                ON CONFLICT (username) DO UPDATE
                   SET password_hash = EXCLUDED.password_hash, rotated_at = now(),
                       revoked_at = NULL, revoked_by = NULL
                 WHERE mqtt_accounts.kind = 'bridge'
                RETURNING {_COLUMNS}""",
            (username, password_hash, actor),
        )
        row = cur.fetchone()
    if row is None:
        raise DeviceExists(f"the MQTT username {username} belongs to a device")
    return _record(row)


def rotate_password(conn: Connection, username: str, password_hash: str) -> AccountRecord | None:
    """New hash for an active account; None when there is no such active account."""
    with conn.cursor() as cur:
        cur.execute(
            f"""UPDATE mqtt_accounts SET password_hash = %s, rotated_at = now()
                 WHERE username = %s AND revoked_at IS NULL RETURNING {_COLUMNS}""",
            (password_hash, username),
        )
        row = cur.fetchone()
    return _record(row) if row else None


def revoke_account(conn: Connection, username: str, actor: str) -> AccountRecord | None:
    """Mark an account revoked (idempotent); None when unknown."""
    with conn.cursor() as cur:
        cur.execute(
            f"""UPDATE mqtt_accounts SET revoked_at = COALESCE(revoked_at, now()),
                       revoked_by = COALESCE(revoked_by, %s)
                 WHERE username = %s RETURNING {_COLUMNS}""",
            (actor, username),
        )
        row = cur.fetchone()
    return _record(row) if row else None


def list_accounts(conn: Connection, *, kind: str | None = "device", markets: list[str] | None = None,
                  include_revoked: bool = False, after: str | None = None, limit: int = 100) -> list[AccountRecord]:
    """Accounts ordered by username, keyset-paginated after ``after``."""
    where = Where().equal({"kind": kind}).markets(markets)
    if not include_revoked:
        where.add("revoked_at IS NULL")
    where.after("username", after)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM mqtt_accounts {where.sql()} ORDER BY username LIMIT %s",
                    (*where.params, limit))
        return [_record(row) for row in cur.fetchall()]


def active_accounts(conn: Connection) -> list[MqttAccount]:
    """Every account that belongs in Mosquitto's password and ACL files."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT username, password_hash, kind, market_id, station_id, device_id
                 FROM mqtt_accounts WHERE revoked_at IS NULL ORDER BY username"""
        )
        return [MqttAccount(*row) for row in cur.fetchall()]
