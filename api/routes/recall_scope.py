"""Recall scope of a failed sample: up its certificate chain to the origin lots, then every lot downstream."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from api.certificate_models import FailureRecallScope, RecallScope
from api.chain_scope import graph, node, scoped
from api.deps import Db, Principal, require_role
from api.errors import ApiError
from domain.chain_events import RapidTest
from schemas.certificate import UNIT_BASE, Unit
from storage import chain_reads
from storage.chain_trace import recall_scope

router = APIRouter(tags=["certificates"])

MAX_DEPTH = 64
NODE_LIMIT = 5000
Depth = Annotated[int, Query(ge=0, le=MAX_DEPTH, description="hops to follow")]
Reader = Annotated[Principal, Depends(require_role("regulator", "operator"))]


def _test(t: RapidTest, seen: set[str]) -> dict[str, Any]:
    out = asdict(t)
    out["failed"] = t.failed
    if t.certificate_no not in seen:  # matched by lot code to a lot outside the caller's scope
        out["certificate_no"] = None
    return out


def _arrived(lots: list[dict[str, Any]]) -> dict[str, float]:
    """What reached a holder (or a stall), per unit: each lot's quantity less what it took from lots the same
    holder already held (:func:`domain.chain.arrived_base`)."""
    total: dict[str, float] = defaultdict(float)
    for lot in lots:
        total[lot["quantity_unit"]] += lot["arrived_base"] / UNIT_BASE[Unit(lot["quantity_unit"])][1]
    return {unit: round(value, 9) for unit, value in total.items()}


def recall(db: Db, sample: dict[str, Any], principal: Principal, max_depth: int) -> dict[str, Any]:
    """The recall scope of ``sample``, every node scoped as the trace endpoints scope them."""
    if not principal.sees_market(sample["market_id"]):
        raise ApiError(404, "not_found", "no such sample")
    found = chain_reads.start_certificates(db, sample["certificate_no"], sample["lot_code"], sample["market_id"])
    starts = sorted(scoped(chain_reads.nodes(db, found), principal))
    scope = recall_scope(db, starts, max_depth, NODE_LIMIT, principal.market_filter())
    up = scoped(scope["up"]["nodes"], principal)
    down = scoped(scope["down"]["nodes"], principal)
    seen = set(down)
    by_lot: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in scope["tests"]:
        by_lot[t.certificate_no].append(_test(t, seen))
    lots = [{**node(n), "tests": by_lot.get(n["certificate_no"], [])}
            for n in sorted(down.values(), key=lambda n: (n["hops"], n["certificate_no"]))]
    holders: dict[str, list[dict[str, Any]]] = defaultdict(list)
    stalls: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for n in down.values():
        holders[n["holder_id"]].append(n)
        if n["stall_id"]:
            stalls[(n["market_id"], n["stall_id"])].append(n)
    return {
        "sample": sample,
        "start": starts,
        "origins": [o for o in scope["origins"] if o in up],
        "chain_up": graph(up, scope["up"]["edges"]),
        "lots": lots,
        "edges": [e for e in scope["down"]["edges"] if e["from"] in down and e["to"] in down],
        "holders": [{"holder_id": h, "role": ns[0]["holder_role"], "lots": sorted(n["certificate_no"] for n in ns),
                     "quantity": _arrived(ns)} for h, ns in sorted(holders.items())],
        "stalls": [{"market_id": m, "stall_id": s, "lots": sorted(n["certificate_no"] for n in ns),
                    "quantity": _arrived(ns)} for (m, s), ns in sorted(stalls.items())],
        "tests": [_test(t, seen) for t in scope["tests"]],
        "truncated": scope["truncated"],
    }


@router.get("/v1/readings/{reading_id}/recall-scope", response_model=RecallScope)
def reading_recall_scope(reading_id: UUID, db: Db, principal: Reader, max_depth: Depth = MAX_DEPTH) -> dict[str, Any]:
    """From a sample's certificate (or lot code): up to the origin lots, then every lot, holder and stall
    downstream of them, with the rapid tests already run on each."""
    sample = chain_reads.reading_sample(db, reading_id, principal.market_filter())
    if sample is None:
        raise ApiError(404, "not_found", f"no reading {reading_id}")
    return recall(db, sample, principal, max_depth)


@router.get("/v1/failures/{failure_id}/recall-scope", response_model=FailureRecallScope)
def failure_recall_scope(failure_id: UUID, db: Db, principal: Reader, max_depth: Depth = MAX_DEPTH) -> dict[str, Any]:
    """The recall scope of a failure's sample (see the reading's recall scope)."""
    sample = chain_reads.failure_sample(db, failure_id, principal.market_filter())
    if sample is None:
        raise ApiError(404, "not_found", f"no failure {failure_id}")
    return {"failure_id": str(failure_id), **recall(db, sample, principal, max_depth)}
