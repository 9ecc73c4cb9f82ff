"""Bulk loads of the chain tables and the province layout they are measured on (benchmarks, first imports).

- :func:`drop_indexes` / :func:`create_indexes`: a load into fresh tables goes faster with the keys,
  foreign keys and secondary indexes built once afterwards (what migration 0003 creates, same names);
- :func:`create_province_layout`: copies of the chain tables hash-partitioned as a province would hold
  them (README, "A province"), and :func:`walk_partitioned`, a trace step on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from storage.db import Connection

#: (table, constraint, definition) in creation order; dropped in reverse.
_CONSTRAINTS = (
    ("certificates", "certificates_pkey", "PRIMARY KEY (certificate_no)"),
    ("certificates", "certificates_supersedes_key", "UNIQUE (supersedes)"),
    ("certificates", "certificates_supersedes_fkey",
     "FOREIGN KEY (supersedes) REFERENCES certificates (certificate_no)"),
    ("certificate_links", "certificate_links_pkey", "PRIMARY KEY (child_no, parent_no)"),
    ("certificate_links", "certificate_links_child_no_fkey",
     "FOREIGN KEY (child_no) REFERENCES certificates (certificate_no)"),
    ("certificate_links", "certificate_links_parent_no_fkey",
     "FOREIGN KEY (parent_no) REFERENCES certificates (certificate_no)"),
)
_INDEXES = (
    "CREATE INDEX certificates_lot_code ON certificates (lot_code) WHERE lot_code IS NOT NULL",
    "CREATE INDEX certificate_links_parent ON certificate_links (parent_no) INCLUDE (child_no, quantity_base)",
)


def drop_indexes(conn: Connection) -> None:
    """Drop the chain tables' keys and indexes (only on tables being filled from empty)."""
    with conn.cursor() as cur:
        cur.execute("DROP INDEX certificates_lot_code, certificate_links_parent")
        for table, name, _ in reversed(_CONSTRAINTS):
            cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    conn.commit()


def create_indexes(conn: Connection) -> None:
    """Build what :func:`drop_indexes` dropped (the foreign keys are validated in one pass each)."""
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        for table, name, definition in _CONSTRAINTS:
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for statement in _INDEXES:
            cur.execute(statement)
    conn.commit()


def database_bytes(conn: Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        row = cur.fetchone()
    return int(row[0]) if row else 0


def table_bytes(conn: Connection, tables: Sequence[str]) -> dict[str, int]:
    """Total size (heap, indexes, TOAST) of each table, partitions included."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT t, COALESCE((SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(t::regclass) p),
                                 pg_total_relation_size(t::regclass))
               FROM unnest(%s::text[]) AS t""",
            (list(tables),),
        )
        return {t: int(size) for t, size in cur.fetchall()}


# --- the province layout ---------------------------------------------------------------------


def create_province_layout(conn: Connection, partitions: int) -> None:
    """``province_certificates`` hash-partitioned by number, and the links twice: ``province_links_up``
    by child (the up walk's key) and ``province_links_down`` by parent (the down walk's key), so every
    step of a walk is one index probe in one partition (run-time pruning on the joined key)."""
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        for table, key, columns in (
            ("province_certificates", "certificate_no", "(LIKE certificates INCLUDING DEFAULTS)"),
            ("province_links_up", "child_no", "(LIKE certificate_links)"),
            ("province_links_down", "parent_no", "(LIKE certificate_links)"),
        ):
            cur.execute(f"CREATE TABLE {table} {columns} PARTITION BY HASH ({key})")
            for i in range(partitions):
                cur.execute(f"CREATE TABLE {table}_{i:03d} PARTITION OF {table} "
                            f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})")
        cur.execute("INSERT INTO province_certificates SELECT * FROM certificates")
        cur.execute("INSERT INTO province_links_up SELECT * FROM certificate_links")
        cur.execute("INSERT INTO province_links_down SELECT * FROM certificate_links")
        cur.execute("ALTER TABLE province_certificates ADD PRIMARY KEY (certificate_no)")
        cur.execute("ALTER TABLE province_links_up ADD PRIMARY KEY (child_no, parent_no)")
        cur.execute("CREATE INDEX ON province_links_down (parent_no) INCLUDE (child_no, quantity_base)")
    conn.commit()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE province_certificates, province_links_up, province_links_down")
    finally:
        conn.autocommit = False


_PROVINCE_WALK = {
    "up": "SELECT l.parent_no, w.hops + 1 FROM walk w JOIN province_links_up l ON l.child_no = w.no",
    "down": "SELECT l.child_no, w.hops + 1 FROM walk w JOIN province_links_down l ON l.parent_no = w.no",
}


def walk_partitioned(conn: Connection, start: str, direction: Literal["up", "down"], max_depth: int,
                     limit: int) -> dict[str, tuple[str, str]]:
    """A trace on the province layout: the walk, then every node's holder and location (the columns a trace
    answer needs), as the API's trace does on the plain tables."""
    with conn.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        cur.execute(
            f"""WITH RECURSIVE walk(no, hops) AS (
                    SELECT %(start)s::text, 0
                    UNION
                    {_PROVINCE_WALK[direction]} WHERE w.hops < %(max_depth)s
                ), found AS (SELECT no, min(hops) AS hops FROM walk GROUP BY no ORDER BY 2, 1 LIMIT %(limit)s)
                SELECT c.certificate_no, c.holder_id, c.market_id
                FROM found f CROSS JOIN LATERAL (SELECT * FROM province_certificates x
                                                 WHERE x.certificate_no = f.no) c""",
            {"start": start, "max_depth": max_depth, "limit": limit},
        )
        return {no: (holder, market) for no, holder, market in cur.fetchall()}


def explain_partitioned_walk(conn: Connection, start: str, direction: Literal["up", "down"]) -> str:
    """The plan of one :func:`walk_partitioned` step (to show which partitions and indexes it touches)."""
    with conn.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        cur.execute(
            f"""EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
                WITH RECURSIVE walk(no, hops) AS (
                    SELECT %(start)s::text, 0 UNION {_PROVINCE_WALK[direction]} WHERE w.hops < 8
                ) SELECT no FROM walk""",
            {"start": start},
        )
        return "\n".join(r[0] for r in cur.fetchall())
