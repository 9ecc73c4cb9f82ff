"""Versioned SQL migrations: ``rapidtrace migrate`` and the start of ``rapidtrace up``.

``storage/migrations/NNNN_name.sql`` runs everywhere, in version order; then
``NNNN_name.timescale.sql`` where the timescaledb extension is present, or
``NNNN_name.plain.sql`` where it is not.  Each version runs in one transaction
and is recorded in ``schema_migrations``; an advisory lock keeps two
processes from migrating at once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from schemas.settings import Settings
from storage.db import Connection, connect, transaction

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
_LOCK_KEY = 0x72617069  # "rapi"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    base: Path
    timescale: Path | None
    plain: Path | None


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, dict[str, Path | str]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} does not match NNNN_name[.timescale|.plain].sql")
        version, name, variant = int(match[1]), match[2], match[3] or "base"
        entry = found.setdefault(version, {})
        entry[variant] = path
        if variant == "base":
            entry["name"] = name
    migrations = []
    for version in sorted(found):
        entry = found[version]
        if "base" not in entry:
            raise ValueError(f"migration {version:04d} has a variant but no base file")
        migrations.append(
            Migration(
                version=version,
                name=str(entry["name"]),
                base=Path(entry["base"]),
                timescale=Path(entry["timescale"]) if "timescale" in entry else None,
                plain=Path(entry["plain"]) if "plain" in entry else None,
            )
        )
    return migrations


def timescale_enabled(conn: Connection) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        return cur.fetchone() is not None


@dataclass(frozen=True)
class StoragePath:
    """Which variant files a new schema takes, and why."""

    timescale: bool
    why: str

    def describe(self) -> str:
        return f"{'TimescaleDB' if self.timescale else 'plain PostgreSQL'} path: {self.why}"


def _preloaded(libraries: str) -> bool:
    return any(name.strip().strip('"') == "timescaledb" for name in libraries.split(","))


def choose_path(conn: Connection) -> StoragePath:
    """Create the extension where the server can load it, else take the plain path.

    A server that offers timescaledb without preloading it ends the connection on ``CREATE EXTENSION``
    (FATAL "must be preloaded"), so ``shared_preload_libraries`` is checked first and the extension is
    only created where it is preloaded."""
    if timescale_enabled(conn):
        return StoragePath(True, "the timescaledb extension is already created in this database")
    with conn.cursor() as cur:
        cur.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'")
        available = cur.fetchone()
        if available is None:
            return StoragePath(False, "the timescaledb extension is not installed on this server")
        cur.execute("SELECT current_setting('shared_preload_libraries')")
        found = cur.fetchone()
        libraries = str(found[0]) if found else ""
        if not _preloaded(libraries):
            return StoragePath(
                False,
                f"timescaledb {available[0]} is installed but not preloaded (shared_preload_libraries = "
                f"'{libraries}'); add it there and restart the server to use TimescaleDB on a new database",
            )
        try:
            cur.execute("SAVEPOINT ts")
            cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            cur.execute("RELEASE SAVEPOINT ts")
        except Exception as exc:  # the server says no (e.g. no privilege): use the plain path
            cur.execute("ROLLBACK TO SAVEPOINT ts")
            return StoragePath(False, f"timescaledb is preloaded but CREATE EXTENSION failed: {exc}".strip())
    return StoragePath(True, f"timescaledb {available[0]} is preloaded; the extension was created")


def render(text: str, settings: Settings) -> str:
    values = {
        "compress_after": settings.timescale_compress_after,
        "retention": settings.timescale_retention,
        "chunk_interval": settings.timescale_chunk_interval,
    }
    for key, value in values.items():
        if not re.match(r"^[0-9a-z ]+$", value):
            raise ValueError(f"setting {key}={value!r} is not an interval like '7 days'")
        text = text.replace("{{" + key + "}}", value)
    return text


def migrate(dsn: str, settings: Settings, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; returns the names applied."""
    conn = connect(dsn, application_name="rapidtrace-migrate")
    applied: list[str] = []
    try:
        with transaction(conn), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, variant text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        with conn.cursor() as cur:
            cur.execute("SELECT version, variant FROM schema_migrations ORDER BY version")
            recorded = cur.fetchall()
        conn.commit()
        done = {row[0] for row in recorded}
        if recorded:
            # A schema keeps the path it was created on, even if the extension appears later.
            timescale = recorded[0][1] == "timescale"
            path = StoragePath(timescale, f"the schema was created on this path ({recorded[0][1]})")
        else:
            with transaction(conn):
                path = choose_path(conn)
            timescale = path.timescale
        pending = [m for m in discover(directory) if m.version not in done]
        if pending:
            (log.info if timescale or "not installed" in path.why else log.warning)("%s", path.describe())
        for migration in pending:
            variant_path = migration.timescale if timescale else migration.plain
            variant = "timescale" if timescale else "plain"
            with transaction(conn), conn.cursor() as cur:
                cur.execute(render(migration.base.read_text(), settings))
                if variant_path is not None:
                    cur.execute(render(variant_path.read_text(), settings))
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, variant),
                )
            applied.append(f"{migration.version:04d}_{migration.name} ({variant})")
            log.info("applied migration %04d_%s (%s)", migration.version, migration.name, variant)
    finally:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock_all()")
            conn.commit()
        finally:
            conn.close()
    return applied


def schema_state(conn: Connection) -> tuple[int | None, str | None]:
    """(the newest migration applied, the timescaledb extension's version or None): what ``/healthz`` shows."""
    with conn.cursor() as cur:
        cur.execute("SELECT max(version) FROM schema_migrations")
        row = cur.fetchone()
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        ts = cur.fetchone()
    return (row[0] if row else None), (ts[0] if ts else None)
