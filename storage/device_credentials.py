"""The device registry in action: issue, rotate and revoke MQTT accounts, and write Mosquitto's files.

Used by the admin API and ``rapidtrace device ...`` alike (so it lives here, below both). Registry changes run in the
caller's transaction (with their audit entry); after the commit,
:func:`write_mosquitto_files` renders the password and ACL files from the
committed registry, replaces them atomically and asks Mosquitto to reload
(SIGHUP through a pid file when one is configured; in docker-compose the
broker's own reload-on-change.sh notices the new files).
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from domain.device_acl import (
    generate_password,
    hash_password,
    reading_topic,
    render_acl_file,
    render_password_file,
    verify_password,
)
from schemas.errors import RapidtraceError
from schemas.settings import Settings
from storage import devices
from storage.audit import record_audit
from storage.db import Connection, transaction

log = logging.getLogger(__name__)

_FILES_LOCK_KEY = 0x72746D71  # "rtmq": one writer of Mosquitto's files at a time


@dataclass(frozen=True)
class MosquittoFiles:
    password_file: Path | None
    acl_file: Path | None
    reload_pid_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MosquittoFiles:
        # RT_MQTT_PASSWORD_FILE, RT_MQTT_ACL_FILE, RT_MQTT_RELOAD_PID_FILE
        def path(name: str) -> Path | None:
            value = getattr(settings, name, None)
            return Path(value) if value else None

        return cls(path("mqtt_password_file"), path("mqtt_acl_file"), path("mqtt_reload_pid_file"))

    @property
    def configured(self) -> bool:
        return self.password_file is not None and self.acl_file is not None


@dataclass(frozen=True)
class IssuedCredentials:
    """A device's new credentials: the password is shown once and never stored."""

    account: devices.AccountRecord
    password: str
    topic: str


def bridge_filters(settings: Settings) -> list[str]:
    return [settings.mqtt_topic_filter, settings.mqtt_certificate_filter]


def add_device(conn: Connection, market_id: str, station_id: str, device_id: str, actor: str) -> IssuedCredentials:
    topic = reading_topic(market_id, station_id, device_id)
    password = generate_password()
    account = devices.register_device(conn, market_id, station_id, device_id, hash_password(password), actor)
    record_audit(conn, actor, "device.add", f"device:{device_id}", {"market_id": market_id, "station_id": station_id})
    return IssuedCredentials(account, password, topic)


def rotate_device(conn: Connection, device_id: str, actor: str) -> IssuedCredentials | None:
    password = generate_password()
    account = devices.rotate_password(conn, device_id, hash_password(password))
    if account is None or account.kind != "device":
        return None
    record_audit(conn, actor, "device.rotate", f"device:{device_id}", {})
    topic = reading_topic(account.market_id or "", account.station_id or "", device_id)
    return IssuedCredentials(account, password, topic)


def revoke_device(conn: Connection, device_id: str, actor: str) -> devices.AccountRecord | None:
    existing = devices.get_account(conn, device_id)
    if existing is None or existing.kind != "device":
        return None
    account = devices.revoke_account(conn, device_id, actor)
    record_audit(conn, actor, "device.revoke", f"device:{device_id}", {"already_revoked": not existing.active})
    return account


def ensure_bridge(conn: Connection, username: str, password: str, actor: str) -> bool:
    """Make the bridge account match ``password``; True when it was created or changed."""
    current = devices.password_hash_of(conn, username)
    if current is not None and verify_password(password, current):
        return False
    devices.upsert_bridge(conn, username, hash_password(password), actor)
    record_audit(conn, actor, "bridge.set_password", f"mqtt:{username}", {"created": current is None})
    return True


def write_mosquitto_files(conn: Connection, files: MosquittoFiles, read_filters: list[str]) -> int:
    """Render both files from the committed registry and replace them; returns the number of accounts."""
    if files.password_file is None or files.acl_file is None:
        raise ValueError("set RT_MQTT_PASSWORD_FILE and RT_MQTT_ACL_FILE to write Mosquitto's files")
    with transaction(conn), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_FILES_LOCK_KEY,))
        accounts = devices.active_accounts(conn)
        passwords = render_password_file(accounts)
        acl = render_acl_file(accounts, read_filters)
        # ACL first: a device whose account is new must not connect before its rule exists,
        # and a revoked one loses its rule even if the password file write failed.
        atomic_write(files.acl_file, acl)
        atomic_write(files.password_file, passwords)
    if files.reload_pid_file is not None:
        signal_reload(files.reload_pid_file)
    log.info("wrote Mosquitto password and ACL files: %d accounts", len(accounts))
    return len(accounts)


def atomic_write(path: Path, text: str, mode: int = 0o640) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def signal_reload(pid_file: Path) -> None:
    """SIGHUP the Mosquitto whose pid is in ``pid_file`` (it re-reads password and ACL files)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot read Mosquitto's pid from {pid_file}: {exc}") from exc
    os.kill(pid, signal.SIGHUP)


NOT_CONFIGURED = "set RT_MQTT_PASSWORD_FILE and RT_MQTT_ACL_FILE, or run `rapidtrace device write-acl`"


@dataclass(frozen=True)
class FilesSync:
    """What became of Mosquitto's files after a registry change."""

    status: Literal["written", "not_configured", "failed"]
    accounts: int | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def sync_mosquitto_files(conn: Connection, settings: Settings) -> FilesSync:
    """After a committed registry change: rewrite Mosquitto's files when they are configured (never raises)."""
    files = MosquittoFiles.from_settings(settings)
    if not files.configured:
        return FilesSync("not_configured", message=NOT_CONFIGURED)
    try:
        return FilesSync("written", accounts=write_mosquitto_files(conn, files, bridge_filters(settings)))
    except (OSError, RapidtraceError, RuntimeError) as exc:
        log.exception("could not write Mosquitto's files")
        return FilesSync("failed", message=f"{exc}; run `rapidtrace device write-acl` once it is fixed")
