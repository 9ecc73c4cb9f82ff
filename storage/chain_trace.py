"""The certificate chain as its readers ask for it: a trace, a verification, a recall scope.

No SQL here: the statements live in :mod:`storage.chain_reads`; this module puts
their answers together (the digest and arrival rules come from :mod:`domain.chain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from domain.chain import arrived_base, verify_nodes
from storage.chain_reads import Direction, edges, nodes, parent_holders, rapid_tests, stored_nodes, walk
from storage.db import Connection


@dataclass(frozen=True)
class Trace:
    nodes: dict[str, dict[str, Any]]
    edges: list[dict[str, Any]]
    truncated: bool


def trace(conn: Connection, number: str, direction: Direction, max_depth: int, limit: int) -> Trace:
    found: dict[str, int] = {}
    side: dict[str, str] = {}
    ways: tuple[Literal["up", "down"], ...] = ("up", "down")
    for way in ways:
        if direction in (way, "both"):
            for no, hops in walk(conn, [number], way, max_depth, limit + 1).items():
                found[no] = min(hops, found.get(no, hops))
                side[no] = "self" if no == number else way
    truncated = len(found) > limit
    keep = sorted(found, key=lambda n: (found[n], n))[:limit]
    found_nodes = nodes(conn, keep)
    for no, node in found_nodes.items():
        node["hops"] = found[no]
        node["side"] = side[no]
    return Trace(found_nodes, edges(conn, keep), truncated)


def verify(conn: Connection, number: str, max_depth: int) -> dict[str, Any]:
    """Recompute every digest up the chain from ``number``; name the first altered record."""
    up = walk(conn, [number], "up", max_depth, 100_000)
    stored = stored_nodes(conn, up)
    present = {n.certificate_no for n in stored}
    alterations: list[dict[str, Any]] = [
        {"certificate_no": no, "hops": hops, "problem": "the record is missing from the database"}
                   for no, hops in up.items() if no not in present]
    alterations += [{"certificate_no": a.certificate_no, "hops": a.depth, "problem": a.what}
                    for a in verify_nodes(stored)]
    alterations.sort(key=lambda a: (-a["hops"], a["certificate_no"]))
    return {
        "certificate_no": number,
        "ok": not alterations,
        "checked": len(up),
        "first_altered": alterations[0]["certificate_no"] if alterations else None,
        "alterations": alterations,
    }


def recall_scope(conn: Connection, starts: Sequence[str], max_depth: int, limit: int,
                 markets: Sequence[str] | None = None) -> dict[str, Any]:
    """Up from ``starts`` to their origin lots, then down to every lot that took any part of them."""
    up = walk(conn, starts, "up", max_depth, limit + 1)
    up_nodes = nodes(conn, up)
    origins = sorted(no for no, n in up_nodes.items() if n["kind"] == "origin")
    down = walk(conn, origins, "down", max_depth, limit + 1)
    truncated = len(up) > limit or len(down) > limit
    down_nodes = nodes(conn, down)
    for no, node in down_nodes.items():
        node["hops"] = down[no]
    for no, node in up_nodes.items():
        node["hops"] = up[no]
    lot_codes = sorted({n["lot_code"] for n in down_nodes.values() if n["lot_code"]})
    tests = rapid_tests(conn, sorted(down_nodes), lot_codes, markets=markets)
    draws = parent_holders(conn, sorted(down_nodes))
    for no, node in down_nodes.items():
        node["arrived_base"] = arrived_base(node["holder_id"], node["quantity_base"], draws.get(no, ()))
    return {
        "up": {"nodes": up_nodes, "edges": edges(conn, up)},
        "origins": origins,
        "down": {"nodes": down_nodes, "edges": edges(conn, down)},
        "tests": tests,
        "truncated": truncated,
    }
