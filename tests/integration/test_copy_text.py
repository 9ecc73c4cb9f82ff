"""COPY text format: every string PostgreSQL could misread comes back exactly as it went in."""

from __future__ import annotations

import pytest

from storage.copy_text import copy_buffer
from storage.db import connect

pytestmark = pytest.mark.integration

VALUES = [
    "plain-id_1.2",
    "韭菜 / 毒死蜱",
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "back\\slash \\N \\t",
    "\\",
    "unicode line\u2028separator",
    "del\x7fchar",
    "",
    None,
]


def test_copy_buffer_round_trips_through_postgresql(db_dsn: str) -> None:
    rows = [(i, v, 1.5 if i % 2 else None) for i, v in enumerate(VALUES)]
    conn = connect(db_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE copied (n int, s text, x double precision)")
            cur.copy_expert("COPY copied (n, s, x) FROM STDIN", copy_buffer(rows))
            cur.execute("SELECT n, s, x FROM copied ORDER BY n")
            assert cur.fetchall() == rows
    finally:
        conn.close()


def test_nul_is_dropped_because_text_cannot_hold_it() -> None:
    assert copy_buffer([("a\x00b", None)]).getvalue() == "ab\t\\N\n"
