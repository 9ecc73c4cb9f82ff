"""Reading the certificate chain: records, traces, verification, exports' inputs, recall scope.

Traces are recursive CTEs over ``certificate_links`` (indexed both ways) with
a depth limit; every function takes an open connection and returns plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal
from uuid import UUID

from domain.chain import StoredLink, StoredNode
from domain.chain_events import RapidTest
from schemas.certificate import CertificateRecord
from storage.db import Connection

Direction = Literal["up", "down", "both"]

NODE_COLUMNS = (
    "certificate_no", "kind", "issued_at", "lot_code", "product_name", "product_category", "quantity_value",
    "quantity_unit", "quantity_base", "holder_id", "holder_role", "market_id", "stall_id", "supersedes",
    "digest", "depth", "stored_at",
)

CORRECTION_COLUMNS = ("superseded_by", "superseded_by_market", "superseded_by_holder")
#: an operator sees records at no market (origins, wholesalers' lots) and those at its markets
_IN_SCOPE = "(%(markets)s::text[] IS NULL OR {t}.market_id IS NULL OR {t}.market_id = ANY(%(markets)s::text[]))"

_WALK = {
    "up": "SELECT l.parent_no, w.hops + 1 FROM walk w JOIN certificate_links l ON l.child_no = w.no",
    "down": "SELECT l.child_no, w.hops + 1 FROM walk w JOIN certificate_links l ON l.parent_no = w.no",
}


def walk(conn: Connection, starts: Sequence[str], direction: Literal["up", "down"], max_depth: int,
         limit: int) -> dict[str, int]:
    """Numbers reachable from ``starts`` within ``max_depth`` hops -> fewest hops (at most ``limit``)."""
    if not starts:
        return {}
    sql = f"""
        WITH RECURSIVE walk(no, hops) AS (
            SELECT unnest(%(starts)s::text[]), 0
            UNION
            {_WALK[direction]} WHERE w.hops < %(max_depth)s
        )
        SELECT no, min(hops) AS hops FROM walk GROUP BY no ORDER BY min(hops), no LIMIT %(limit)s
    """
    with conn.cursor() as cur:
        # a recursive CTE's cost estimate can pass jit_above_cost; compiling costs more than the walk
        cur.execute("SET LOCAL jit = off")
        cur.execute(sql, {"starts": list(starts), "max_depth": max_depth, "limit": limit})
        return dict(cur.fetchall())


def nodes(conn: Connection, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Stored records by number, each with the record correcting it (``superseded_by``) and where that one is
    (``superseded_by_market``, ``superseded_by_holder``: what a scoped reader needs to decide whether to name it)."""
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT {', '.join('c.' + c for c in NODE_COLUMNS)}, s.certificate_no, s.market_id, s.holder_id
                FROM certificates c LEFT JOIN certificates s ON s.supersedes = c.certificate_no
                WHERE c.certificate_no = ANY(%s)""",
            (list(numbers),),
        )
        out = {}
        for row in cur.fetchall():
            node = dict(zip((*NODE_COLUMNS, *CORRECTION_COLUMNS), row, strict=True))
            out[node["certificate_no"]] = node
        return out


def edges(conn: Connection, numbers: Iterable[str]) -> list[dict[str, Any]]:
    """Links whose both ends are among ``numbers``."""
    wanted = list(numbers)
    with conn.cursor() as cur:
        cur.execute(
            """SELECT parent_no, child_no, quantity_value, quantity_unit FROM certificate_links
               WHERE child_no = ANY(%s) AND parent_no = ANY(%s) ORDER BY parent_no, child_no""",
            (wanted, wanted),
        )
        return [{"from": p, "to": c, "quantity": {"value": v, "unit": u}} for p, c, v, u in cur.fetchall()]


def record(conn: Connection, number: str, markets: Sequence[str] | None = None,
           children_limit: int = 100) -> dict[str, Any] | None:
    """One stored record with its digest, its correction and its children, or None.

    ``markets`` (an operator's) limits the children named to those in scope; the others are only counted
    (``children_outside_scope``)."""
    params = {"no": number, "markets": None if markets is None else list(markets), "limit": children_limit}
    with conn.cursor() as cur:
        cur.execute(
            """SELECT c.record, c.digest, c.depth, c.stored_at, c.market_id, c.holder_id, c.submitter,
                      s.certificate_no, s.market_id, s.holder_id
               FROM certificates c LEFT JOIN certificates s ON s.supersedes = c.certificate_no
               WHERE c.certificate_no = %(no)s""",
            params,
        )
        row = cur.fetchone()
        if row is None:
            return None
        rec, digest, depth, stored_at, market_id, holder_id, submitter, *correction = row
        cur.execute(
            f"""SELECT count(*) FILTER (WHERE {_IN_SCOPE.format(t='k')}),
                       count(*) FILTER (WHERE NOT {_IN_SCOPE.format(t='k')})
                FROM certificate_links l JOIN certificates k ON k.certificate_no = l.child_no
                WHERE l.parent_no = %(no)s""",
            params,
        )
        inside, outside = cur.fetchone() or (0, 0)
        cur.execute(
            f"""SELECT l.child_no FROM certificate_links l JOIN certificates k ON k.certificate_no = l.child_no
                WHERE l.parent_no = %(no)s AND {_IN_SCOPE.format(t='k')} ORDER BY l.child_no LIMIT %(limit)s""",
            params,
        )
        child_numbers = [c for (c,) in cur.fetchall()]
        cur.execute(
            """SELECT l.parent_no, p.market_id, p.holder_id FROM certificate_links l
               JOIN certificates p ON p.certificate_no = l.parent_no WHERE l.child_no = %(no)s""",
            params,
        )
        parent_lots = cur.fetchall()
    return {"status": "accepted", "parent_lots": parent_lots, "certificate_no": number, "record": rec,
            "digest": digest, "depth": depth,
            "stored_at": stored_at, **dict(zip(CORRECTION_COLUMNS, correction, strict=True)),
            "children": child_numbers, "children_count": inside, "children_outside_scope": outside,
            "market_id": market_id, "holder_id": holder_id, "submitter": submitter}


def held(conn: Connection, number: str) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute("SELECT record, waits_for, held_at FROM certificate_held WHERE certificate_no = %s", (number,))
        row = cur.fetchone()
    if row is None:
        return None
    rec, waits_for, held_at = row
    location = rec.get("location") or {}
    return {"status": "held", "certificate_no": number, "record": rec, "waits_for": list(waits_for),
            "held_at": held_at, "market_id": location.get("market_id"), "holder_id": rec["holder"]["id"]}


def chain_records(conn: Connection, numbers: Iterable[str]) -> dict[str, CertificateRecord]:
    with conn.cursor() as cur:
        cur.execute("SELECT certificate_no, record FROM certificates WHERE certificate_no = ANY(%s)",
                    (list(numbers),))
        return {no: CertificateRecord.model_validate(rec) for no, rec in cur.fetchall()}


# --- verification -------------------------------------------------------------------


def stored_nodes(conn: Connection, depth_of: dict[str, int]) -> list[StoredNode]:
    numbers = list(depth_of)
    with conn.cursor() as cur:
        cur.execute(
            """SELECT child_no, parent_no, quantity_value, quantity_unit, parent_digest
               FROM certificate_links WHERE child_no = ANY(%s)""",
            (numbers,),
        )
        links: dict[str, list[StoredLink]] = {}
        for child, parent, value, unit, parent_digest in cur.fetchall():
            links.setdefault(child, []).append(StoredLink(parent, value, unit, parent_digest))
        cols = NODE_COLUMNS[:14]
        cur.execute(f"SELECT {', '.join(cols)}, record, digest FROM certificates WHERE certificate_no = ANY(%s)",
                    (numbers,))
        out = []
        for row in cur.fetchall():
            columns = dict(zip(cols, row[:14], strict=True))
            no = columns["certificate_no"]
            out.append(StoredNode(no, depth_of[no], row[14], row[15], columns, links.get(no, [])))
    return out


# --- rapid tests and recall scope -------------------------------------------------------


def rapid_tests(conn: Connection, numbers: Sequence[str], lot_codes: Sequence[str], limit: int = 1000,
                markets: Sequence[str] | None = None) -> list[RapidTest]:
    """Readings that sampled these lots (by certificate number, or by lot code when they name no certificate)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT r.reading_id::text, r.measured_at, r.certificate_no, r.lot_code, r.analyte, r.method,
                      COALESCE(v.server_result, r.device_result), r.market_id, r.station_id, r.device_id,
                      r.c_line, r.t_line, r.inhibition_pct, r.device_result
               FROM readings r
               LEFT JOIN verdicts v ON v.reading_id = r.reading_id AND v.measured_at = r.measured_at
               WHERE (r.certificate_no = ANY(%(nos)s)
                      OR (r.certificate_no IS NULL AND r.lot_code = ANY(%(lots)s)))
                 AND (%(markets)s::text[] IS NULL OR r.market_id = ANY(%(markets)s::text[]))
               ORDER BY r.measured_at, r.reading_id LIMIT %(limit)s""",
            {"nos": list(numbers), "lots": list(lot_codes), "limit": limit,
             "markets": list(markets) if markets is not None else None},
        )
        rows = cur.fetchall()
    by_lot = _lots_to_numbers(conn, [r[3] for r in rows if r[2] is None and r[3]], numbers)
    out = []
    for rid, at, no, lot, analyte, method, result, market, station, device, c, t, inh, device_result in rows:
        number = no or by_lot.get(lot)
        if number is None:
            continue
        out.append(RapidTest(rid, at, number, analyte, method, result, market, station, device, c, t, inh,
                             device_result))
    return out


def _lots_to_numbers(conn: Connection, lot_codes: list[str], numbers: Sequence[str]) -> dict[str, str]:
    if not lot_codes:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            """SELECT DISTINCT ON (lot_code) lot_code, certificate_no FROM certificates
               WHERE lot_code = ANY(%s) AND certificate_no = ANY(%s) ORDER BY lot_code, depth DESC""",
            (lot_codes, list(numbers)),
        )
        return dict(cur.fetchall())


_IN_MARKETS = " AND (%(markets)s::text[] IS NULL OR {column} = ANY(%(markets)s::text[]))"


def reading_sample(conn: Connection, reading_id: UUID, markets: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The sample a reading took, when it is in ``markets`` (None: any market)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT r.reading_id::text, r.measured_at, r.market_id, r.station_id, r.certificate_no, r.lot_code,
                      r.commodity, r.analyte, r.device_result, v.server_result
               FROM readings r
               LEFT JOIN verdicts v ON v.reading_id = r.reading_id AND v.measured_at = r.measured_at
               WHERE r.reading_id = %(id)s::uuid AND r.measured_at = (
                   SELECT measured_at FROM reading_ids WHERE reading_id = %(id)s::uuid)""" +
            _IN_MARKETS.format(column="r.market_id") +
            " ORDER BY r.measured_at DESC LIMIT 1",
            {"id": str(reading_id), "markets": None if markets is None else list(markets)},
        )
        row = cur.fetchone()
    if row is None:
        return None
    keys = ("reading_id", "measured_at", "market_id", "station_id", "certificate_no", "lot_code", "commodity",
            "analyte", "device_result", "server_result")
    return dict(zip(keys, row, strict=True))


def failure_sample(conn: Connection, failure_id: UUID, markets: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The sample behind a failure in ``markets`` (None: any market): its reading when it has one,
    else what the failure itself names."""
    scope = None if markets is None else list(markets)
    with conn.cursor() as cur:
        cur.execute(
            """SELECT reading_id::text, measured_at, market_id, station_id, certificate_no, lot_code, commodity,
                      analyte FROM failures WHERE failure_id = %(id)s::uuid""" + _IN_MARKETS.format(column="market_id"),
            {"id": str(failure_id), "markets": scope},
        )
        row = cur.fetchone()
    if row is None:
        return None
    reading = reading_sample(conn, UUID(row[0]), scope) if row[0] else None
    if reading is not None:
        return reading
    keys = ("reading_id", "measured_at", "market_id", "station_id", "certificate_no", "lot_code", "commodity",
            "analyte")
    return dict(zip(keys, row, strict=True))


def start_certificates(conn: Connection, certificate_no: str | None, lot_code: str | None,
                       market_id: str | None) -> list[str]:
    """The records a sample came from: its certificate number, else the lots with its lot code
    (those at the sample's market when there are any)."""
    with conn.cursor() as cur:
        if certificate_no:
            cur.execute("SELECT certificate_no FROM certificates WHERE certificate_no = %s", (certificate_no,))
            if cur.fetchone():
                return [certificate_no]
        if not lot_code:
            return []
        cur.execute("SELECT certificate_no, market_id FROM certificates WHERE lot_code = %s ORDER BY certificate_no",
                    (lot_code,))
        rows = cur.fetchall()
    here = [no for no, market in rows if market_id is not None and market == market_id]
    return here or [no for no, _ in rows]




def parent_holders(conn: Connection, numbers: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
    """For each of ``numbers``: (parent's holder, base quantity taken from that parent) of every parent link."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT l.child_no, p.holder_id, l.quantity_base FROM certificate_links l
               JOIN certificates p ON p.certificate_no = l.parent_no WHERE l.child_no = ANY(%s)""",
            (list(numbers),),
        )
        out: dict[str, list[tuple[str, float]]] = {}
        for child, holder, base in cur.fetchall():
            out.setdefault(child, []).append((holder, base))
        return out


def held_records(conn: Connection, after: tuple[Any, str] | None, limit: int) -> list[dict[str, Any]]:
    """Held records, oldest first, from after the keyset ``(held_at, certificate_no)``: what each waits for,
    and which of those are themselves held (waiting on something else) rather than not arrived at all."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT h.certificate_no, h.record->>'kind', h.record->'holder'->>'id',
                      h.record->'location'->>'market_id', h.waits_for, h.held_at, h.submitter,
                      ARRAY(SELECT w FROM unnest(h.waits_for) w
                            WHERE EXISTS (SELECT 1 FROM certificate_held x WHERE x.certificate_no = w))
               FROM certificate_held h
               WHERE %(at)s::timestamptz IS NULL OR (h.held_at, h.certificate_no) > (%(at)s::timestamptz, %(no)s)
               ORDER BY h.held_at, h.certificate_no LIMIT %(limit)s""",
            {"at": after[0] if after else None, "no": after[1] if after else None, "limit": limit},
        )
        keys = ("certificate_no", "kind", "holder_id", "market_id", "waits_for", "held_at", "submitter",
                "waits_on_held")
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


def held_longer_than(conn: Connection, before: Any, limit: int = 1000) -> list[dict[str, Any]]:
    """Held records that have waited since before ``before`` (oldest first)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT certificate_no, record, waits_for, held_at FROM certificate_held
               WHERE held_at < %s ORDER BY held_at, certificate_no LIMIT %s""",
            (before, limit),
        )
        keys = ("certificate_no", "record", "waits_for", "held_at")
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]
