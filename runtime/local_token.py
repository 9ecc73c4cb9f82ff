"""The one regulator token of the local stack: kept in the data directory (mode 0600), reused by each
``rapidtrace up`` while it is live, replaced when revoked or expired, revoked by
``rapidtrace token revoke --all-local``."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from runtime.cli_commands import actor
from schemas.common import utc_now
from schemas.settings import Settings
from storage.db import connect, transaction

LOCAL_NAME = "rapidtrace up (local)"


def token_path(settings: Settings) -> Path:
    return settings.data_dir / "local-token.json"


def _dsn(settings: Settings) -> str:
    return settings.database_url or f"postgresql://postgres@127.0.0.1:{settings.pg_port}/rapidtrace"


def local_token(settings: Settings) -> tuple[str, bool]:
    """The kept token if still live, else a new one (kept); and whether it is new."""
    from domain.access import hash_token
    from storage.tokens import find_active, issue_token

    path = token_path(settings)
    conn = connect(_dsn(settings), application_name="rapidtrace-up")
    try:
        with transaction(conn):
            try:
                kept = json.loads(path.read_text())["token"]
            except (OSError, ValueError, KeyError, TypeError):
                kept = None
            if isinstance(kept, str) and find_active(conn, hash_token(kept)) is not None:
                return kept, False
            expires = utc_now() + timedelta(days=settings.token_expiry_days)
            issued = issue_token(conn, name=LOCAL_NAME, role="regulator", expires_at=expires, actor=actor())
            _write_private(path, json.dumps({"token": issued.token, "token_id": issued.record.token_id,
                                             "expires_at": expires.isoformat()}))
            return issued.token, True
    finally:
        conn.close()


def revoke_local(settings: Settings) -> list[str]:
    from storage.audit import record_audit
    from storage.tokens import revoke_named

    conn = connect(_dsn(settings), application_name="rapidtrace-admin")
    try:
        with transaction(conn):
            revoked = revoke_named(conn, LOCAL_NAME, actor())
            for token_id in revoked:
                record_audit(conn, actor(), "token.revoke", f"token:{token_id}", {"name": LOCAL_NAME})
    finally:
        conn.close()
    token_path(settings).unlink(missing_ok=True)
    return revoked


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
