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


def _try_enable_timescale(conn: Connection) -> bool:
    """Create the extension where the server offers it; a server that lists it but
    has not preloaded it refuses, and then the plain path is used."""
    if timescale_enabled(conn):
        return True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        if cur.fetchone() is None:
            return False
        try:
            cur.execute("SAVEPOINT ts")
            cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            cur.execute("RELEASE SAVEPOINT ts")
        except Exception as exc:  # the server says no: use the plain path
            cur.execute("ROLLBACK TO SAVEPOINT ts")
            log.warning("timescaledb is available but could not be created (%s); using plain PostgreSQL", exc)
            return False
    return True


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
        else:
            with transaction(conn):
                timescale = _try_enable_timescale(conn)
        for migration in discover(directory):
            if migration.version in done:
                continue
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
