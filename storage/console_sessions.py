"""Ended console sessions (``console_logouts``): logging out ends a session for every copy of its cookie."""

from __future__ import annotations

from datetime import datetime

from storage.db import Connection


def end_session(conn: Connection, session_id: str, expires_at: datetime) -> None:
    """Record a logged-out session until its cookie would expire; forget the expired ones."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM console_logouts WHERE expires_at < now()")
        cur.execute(
            "INSERT INTO console_logouts (session_id, expires_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (session_id, expires_at),
        )
    conn.commit()


def is_ended(conn: Connection, session_id: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM console_logouts WHERE session_id = %s", (session_id,))
        return cur.fetchone() is not None
