"""Who reads which part of the certificate chain: the scope rules every chain answer goes through.

Regulators see every record. Operators see records without a market (origins, collectors' and
wholesalers' lots) and those at their markets. Producers read their own chains: they start a
trace, a verification or an export only from a record they hold, and see the records they hold
plus everything downstream of them (where their lots went: a producer answers for recalling its
own product); other branches (another holder's lot merged in, the suppliers upstream of a lot they
did not issue) stay hidden. A record out of scope is never named: not as a node, an edge, a child,
a correction, a parent in an export, nor a recall's start; at most it is counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from api.deps import Principal
from schemas.certificate import CertificateRecord


def visible(principal: Principal, market_id: str | None, holder_id: str | None) -> bool:
    """May ``principal`` read this record in full (or start a trace from it)?"""
    if principal.role == "producer":
        return holder_id is not None and holder_id == principal.holder_id
    return market_id is None or principal.sees_market(market_id)


def child_markets(principal: Principal) -> list[str] | None:
    """The markets whose children a record's detail may name (None: all; a producer sees its lots' descendants)."""
    return principal.market_filter() if principal.role == "operator" else None


def correction_visible(principal: Principal, node: Mapping[str, Any]) -> bool:
    """May ``principal`` see the number of the record correcting ``node`` (a node it sees)?"""
    if node.get("superseded_by") is None:
        return False
    if principal.role == "producer":  # its own correction, or the holder's of a lot downstream of its own
        return node["superseded_by_holder"] in (principal.holder_id, node["holder_id"])
    return visible(principal, node["superseded_by_market"], node["superseded_by_holder"])


def scrub_correction(principal: Principal, node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with ``superseded_by`` named only when in scope (``superseded`` says whether there is one)."""
    out = {**node, "superseded": node.get("superseded_by") is not None}
    if not correction_visible(principal, node):
        out["superseded_by"] = None
    return out


def scrub_parents(principal: Principal, found: dict[str, Any]) -> dict[str, Any]:
    """A record's detail with the parents outside the caller's scope unnamed (``certificate_no`` null) and
    counted (``parents_outside_scope``); ``found["parent_lots"]``: (number, market, holder) of each parent."""
    hidden = {no for no, market, holder in found["parent_lots"] if not visible(principal, market, holder)}
    if principal.role == "regulator" or not hidden:
        return {**found, "parents_outside_scope": 0}
    rec = found["record"]
    parents = [{**p, "certificate_no": None} if p["certificate_no"] in hidden else p for p in rec["parents"]]
    return {**found, "record": {**rec, "parents": parents}, "parents_outside_scope": len(hidden)}


def scoped(nodes: dict[str, dict[str, Any]], principal: Principal,
           edges: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The nodes of a chain ``principal`` may see (for a producer: its own and, along ``edges``, their
    descendants), each with its correction scrubbed."""
    own = {no for no, n in nodes.items() if visible(principal, n["market_id"], n["holder_id"])}
    if principal.role == "producer":
        own = downstream(own, edges or [])
    return {no: scrub_correction(principal, n) for no, n in nodes.items() if no in own}


def downstream(starts: set[str], edges: list[dict[str, Any]]) -> set[str]:
    children: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        children[e["from"]].append(e["to"])
    seen, todo = set(starts), list(starts)
    while todo:
        for child in children[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def scoped_records(records: dict[str, CertificateRecord], principal: Principal,
                   seen: set[str]) -> dict[str, CertificateRecord]:
    """Records for an export, naming no parent outside ``seen`` (another market's or holder's lot)."""
    if principal.role == "regulator":
        return records
    return {no: r.model_copy(update={"parents": [p for p in r.parents if p.certificate_no in seen]})
            for no, r in records.items()}


def graph(nodes: dict[str, dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(nodes.values(), key=lambda n: (n.get("hops", 0), n["issued_at"], n["certificate_no"]))
    return {"nodes": [node(n) for n in ordered],
            "edges": [e for e in edges if e["from"] in nodes and e["to"] in nodes]}


def node(n: dict[str, Any]) -> dict[str, Any]:
    return {
        "certificate_no": n["certificate_no"], "kind": n["kind"], "hops": n.get("hops"), "side": n.get("side"),
        "depth": n["depth"],
        "issued_at": n["issued_at"], "lot_code": n["lot_code"],
        "product": {"name": n["product_name"], "category": n["product_category"]},
        "quantity": {"value": n["quantity_value"], "unit": n["quantity_unit"]},
        "holder": {"id": n["holder_id"], "role": n["holder_role"]},
        "location": {"market_id": n["market_id"], "stall_id": n["stall_id"]},
        "digest": n["digest"], "supersedes": n["supersedes"], "superseded_by": n["superseded_by"],
        "superseded": n.get("superseded", n["superseded_by"] is not None),
    }
