"""SQL of the chain's writers (chain consumer, bulk loader): read what a batch needs, write what it accepts or holds."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.chain import ParentState
from domain.custody import Lot
from schemas.certificate import UNIT_BASE, Submitter, Unit

#: Key of the transaction-level advisory lock that serialises chain writers, so a
#: held record and the parent that releases it can never pass each other unseen.
CHAIN_LOCK_KEY = 0x72744348  # "rtCH"

Cursor = Any


@dataclass
class Known:
    """A stored (or just accepted) record, as children and duplicates see it."""

    state: ParentState
    depth: int
    superseded: bool
    draws: dict[str, float]  # parent number -> base quantity this record took
    record: Any  # the canonical record (for duplicate detection)
    lot: Lot  # whose it is (chain of custody)


def lock_chain(cur: Cursor) -> None:
    """Take the chain writer lock for this transaction (and keep the planner from JIT-compiling
    the batch's short queries, which costs far more than they take)."""
    cur.execute("SET LOCAL jit = off")
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK_KEY,))


_STORED = """
SELECT c.certificate_no, c.record, c.digest, c.depth, c.product_name, c.product_category, c.quantity_unit,
       c.quantity_base, c.holder_id, c.market_id,
       COALESCE((SELECT sum(l.quantity_base) FROM certificate_links l
                 WHERE l.parent_no = c.certificate_no
                   AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.supersedes = l.child_no)), 0),
       (SELECT s.certificate_no FROM certificates s WHERE s.supersedes = c.certificate_no) IS NOT NULL,
       (SELECT array_agg(l.parent_no || ' ' || l.quantity_base::text) FROM certificate_links l
        WHERE l.child_no = c.certificate_no)
FROM unnest(%s::text[]) AS wanted(no)
-- one primary-key lookup per number, whatever the statistics say (OFFSET 0 keeps it a lookup)
CROSS JOIN LATERAL (SELECT * FROM certificates x WHERE x.certificate_no = wanted.no OFFSET 0) c
"""


def fetch_known(cur: Cursor, numbers: Iterable[str]) -> dict[str, Known]:
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    cur.execute(_STORED, (wanted,))
    out: dict[str, Known] = {}
    for (no, record, digest, depth, name, category, unit, base, holder_id, market_id, consumed, superseded,
         draws) in cur.fetchall():
        state = ParentState(no, name, category, UNIT_BASE[Unit(unit)][0], base, float(consumed), digest)
        parsed = {d.split(" ")[0]: float(d.split(" ")[1]) for d in draws or ()}
        out[no] = Known(state, depth, superseded, parsed, record, Lot(no, holder_id, market_id))
    return out


def fetch_held(cur: Cursor, numbers: Iterable[str]) -> dict[str, Any]:
    """Canonical records of held rows with these numbers."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    cur.execute("SELECT certificate_no, record FROM certificate_held WHERE certificate_no = ANY(%s)", (wanted,))
    return dict(cur.fetchall())


def release_held(cur: Cursor, accepted: Sequence[str]) -> list[tuple[str, bytes, str, Submitter | None]]:
    """Take out the held rows waiting for any of ``accepted``: (number, raw, source topic, submitter)."""
    if not accepted:
        return []
    cur.execute(
        # ARRAY(...) runs once, then both lookups are index scans whatever the (churning) statistics say
        """DELETE FROM certificate_held
           WHERE certificate_no = ANY(ARRAY(SELECT DISTINCT waiting_no FROM certificate_waits
                                            WHERE awaited_no = ANY(%s::text[])))
           RETURNING certificate_no, raw, source_topic, submitter""",
        (list(accepted),),
    )
    return [(no, bytes(raw), topic, None if sub is None else Submitter.model_validate(sub))
            for no, raw, topic, sub in cur.fetchall()]


def held_graph(cur: Cursor, numbers: Iterable[str]) -> dict[str, list[str]]:
    """Held records reachable from ``numbers`` by what they wait for: number -> waits_for."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    cur.execute(
        """
        WITH RECURSIVE walk(no) AS (
            SELECT unnest(%s::text[])
            UNION
            SELECT unnest(h.waits_for) FROM certificate_held h JOIN walk ON h.certificate_no = walk.no
        )
        SELECT h.certificate_no, h.waits_for FROM certificate_held h JOIN walk ON h.certificate_no = walk.no
        """,
        (wanted,),
    )
    return {no: list(waits) for no, waits in cur.fetchall()}


CERTIFICATE_COLUMNS = (
    "certificate_no", "kind", "issued_at", "lot_code", "product_name", "product_category", "quantity_value",
    "quantity_unit", "quantity_base", "holder_id", "holder_role", "market_id", "stall_id", "supersedes",
    "record", "digest", "depth", "submitter",
)
NULLABLE_COLUMNS = ("lot_code", "market_id", "stall_id", "supersedes", "submitter")
LINK_COLUMNS = ("child_no", "parent_no", "quantity_value", "quantity_unit", "quantity_base", "parent_digest")


def copy_rows(cur: Cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              nullable: Sequence[str] = ()) -> None:
    """COPY rows in as CSV (strings quoted, numbers bare); None is written as "" and read back as
    NULL in the ``nullable`` columns (none of which may hold an empty string)."""
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(rows)
    buf.seek(0)
    force_null = f", FORCE_NULL ({', '.join(nullable)})" if nullable else ""
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv{force_null})", buf)


def insert_certificates(cur: Cursor, rows: list[tuple[Any, ...]]) -> None:
    """COPY new records in (the caller holds the chain lock and has checked that none exists;
    a unique violation would abort the batch and the runner would retry record by record)."""
    if rows:
        copy_rows(cur, "certificates", CERTIFICATE_COLUMNS, rows, NULLABLE_COLUMNS)


def insert_links(cur: Cursor, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        copy_rows(cur, "certificate_links", LINK_COLUMNS, rows)


def submitter_json(submitter: Submitter) -> str:
    """The ``submitter`` column's value."""
    return submitter.model_dump_json(exclude_none=True)


def insert_held(cur: Cursor, rows: list[tuple[str, str, list[str], bytes, str, Submitter]]) -> None:
    """(number, canonical record JSON, waits_for, raw, source topic, submitter)."""
    if rows:
        # certificate numbers are identifiers ([A-Za-z0-9._-]), so a plain array literal is exact
        copy_rows(cur, "certificate_held",
                  ("certificate_no", "record", "waits_for", "raw", "source_topic", "submitter"),
                  [(no, rec, "{" + ",".join(waits) + "}", "\\x" + raw.hex(), topic, submitter_json(sub))
                   for no, rec, waits, raw, topic, sub in rows])
        copy_rows(cur, "certificate_waits", ("waiting_no", "awaited_no"),
                  [(no, awaited) for no, _, waits, _, _, _ in rows for awaited in waits])
