"""Certificates of conformity: submit, read, trace, verify, export; recall scope of a failed sample."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from kafka import KafkaProducer
from kafka.errors import KafkaError
from pydantic import ValidationError

from api.deps import ClockDep, CurrentPrincipal, Db, Principal, ProducerDep, SettingsDep, require_role
from api.errors import ApiError
from api.queries import chain as q
from domain.chain import canonical_json, canonical_record
from domain.chain_events import RapidTest
from domain.epcis import epcis_document
from domain.fsma import fsma_csv
from schemas.certificate import CertificateRecord, Kind, Route, Submitter, SubmitterRole
from schemas.deadletter import deadletter_value
from schemas.settings import Settings
from storage.audit import record_audit_many

router = APIRouter(tags=["certificates"])
log = logging.getLogger(__name__)

MAX_BATCH = 1000
DEFAULT_DEPTH = 16
MAX_DEPTH = 64
NODE_LIMIT = 5000

Number = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="certificate number")]
Depth = Annotated[int, Query(ge=0, le=MAX_DEPTH, description="hops to follow")]
Reader = Annotated[Principal, Depends(require_role("regulator", "operator"))]
#: Traces, verification and exports: producers too, of their own chains (see "scope").
ChainReader = Annotated[Principal, Depends(require_role("regulator", "operator", "producer"))]


# --- scope ------------------------------------------------------------------------
#
# Regulators see every record. Operators see records without a market and those at
# their markets. Producers read their own chains: they start a trace, a verification
# or an export only from a record they hold, and see the records they hold plus
# everything downstream of them (where their lots went: a producer answers for
# recalling its own product); other branches (another holder's lot merged in, the
# suppliers upstream of a lot they did not issue) stay hidden. Recall scope is for
# regulators and operators.


def _visible(principal: Principal, market_id: str | None, holder_id: str | None) -> bool:
    """May ``principal`` read this record in full (or start a trace from it)?"""
    if principal.role == "producer":
        return holder_id is not None and holder_id == principal.holder_id
    return market_id is None or principal.sees_market(market_id)


def _not_found(number: str) -> ApiError:
    return ApiError(404, "not_found", f"no certificate {number}")


def _start(db: Db, number: str, principal: Principal) -> dict[str, Any]:
    found = q.record(db, number)
    if found is None or not _visible(principal, found["market_id"], found["holder_id"]):
        raise _not_found(number)
    return found


def _scoped(nodes: dict[str, dict[str, Any]], principal: Principal,
            edges: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The nodes of a chain ``principal`` may see (for a producer: its own and, along ``edges``, their descendants)."""
    own = {no for no, n in nodes.items() if _visible(principal, n["market_id"], n["holder_id"])}
    if principal.role == "producer":
        own = _downstream(own, edges or [])
    return {no: n for no, n in nodes.items() if no in own}


def _downstream(starts: set[str], edges: list[dict[str, Any]]) -> set[str]:
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


def _graph(nodes: dict[str, dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(nodes.values(), key=lambda n: (n.get("hops", 0), n["issued_at"], n["certificate_no"]))
    return {"nodes": [_node(n) for n in ordered],
            "edges": [e for e in edges if e["from"] in nodes and e["to"] in nodes]}


def _node(n: dict[str, Any]) -> dict[str, Any]:
    return {
        "certificate_no": n["certificate_no"], "kind": n["kind"], "hops": n.get("hops"), "side": n.get("side"),
        "depth": n["depth"],
        "issued_at": n["issued_at"], "lot_code": n["lot_code"],
        "product": {"name": n["product_name"], "category": n["product_category"]},
        "quantity": {"value": n["quantity_value"], "unit": n["quantity_unit"]},
        "holder": {"id": n["holder_id"], "role": n["holder_role"]},
        "location": {"market_id": n["market_id"], "stall_id": n["stall_id"]},
        "digest": n["digest"], "supersedes": n["supersedes"], "superseded_by": n["superseded_by"],
    }


# --- submission -------------------------------------------------------------------


def _parse_batch(body: Any) -> list[CertificateRecord]:
    items = body.get("records") if isinstance(body, dict) and "records" in body else body
    many = isinstance(items, list)
    raw = items if many else [items]
    if not raw or len(raw) > MAX_BATCH:
        raise ApiError(422, "invalid_request", f"send between 1 and {MAX_BATCH} records")
    records: list[CertificateRecord] = []
    errors: list[dict[str, Any]] = []
    for index, data in enumerate(raw):
        try:
            records.append(CertificateRecord.model_validate(data))
        except ValidationError as exc:
            errors.append({"index": index, "errors": [
                {"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()[:10]]})
    if errors:
        first = errors[0]["errors"][0]
        raise ApiError(422, "invalid_certificate", f"record {errors[0]['index']}: {'.'.join(first['loc'])}: "
                       f"{first['msg']}", {"records": errors})
    return records


def _check_submitter(principal: Principal, rec: CertificateRecord) -> None:
    """What the API can refuse before Kafka; custody of the parents is decided by the chain consumer
    (:mod:`domain.custody`): a producer's hand-off, split or merge may name the holder it passes its lot to."""
    if principal.role == "producer" and rec.kind is Kind.ORIGIN and rec.holder.id != principal.holder_id:
        raise ApiError(403, "forbidden", f"a producer may only issue origin records as its own holder id "
                       f"({principal.holder_id}); {rec.certificate_no} names {rec.holder.id}")
    if principal.role == "operator" and principal.markets is not None and \
            rec.location.market_id not in principal.markets:
        raise ApiError(403, "forbidden", f"{rec.certificate_no} is not located at one of your markets")


def submitter(principal: Principal) -> Submitter:
    """The principal as the chain consumer sees it (the ``rt_submitter`` header of every record it submits)."""
    return Submitter(role=SubmitterRole(principal.role), name=principal.name, route=Route.HTTP,
                     holder_id=principal.holder_id if principal.role == "producer" else None,
                     markets=None if principal.markets is None or principal.role != "operator"
                     else tuple(sorted(principal.markets)))


SUBMIT_ROUTE = "POST /v1/certificates"


def _refused(producer: KafkaProducer, settings: Settings, body: Any, principal: Principal, exc: ApiError) -> None:
    """A submission refused with 422 becomes a dead letter (source ``http``), so the regulator sees it
    like the MQTT ones; if Kafka is away the caller still gets its 422 (and the log says so)."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    reason = f"{exc.message} (from {principal.role} {principal.name!r})"
    try:
        producer.send(settings.topic_deadletter, key=SUBMIT_ROUTE.encode(),
                      value=deadletter_value("http", SUBMIT_ROUTE, raw, exc.code, reason)).get(timeout=10)
    except KafkaError as err:
        log.warning("could not record the refused submission as a dead letter: %s", err)


def _audited(rec: CertificateRecord) -> dict[str, Any]:
    return {"kind": rec.kind.value, "holder_id": rec.holder.id, "lot_code": rec.lot_code,
            "market_id": rec.location.market_id, "parents": [p.certificate_no for p in rec.parents]}


@router.post("/v1/certificates", status_code=202)
def submit_certificates(
    body: Annotated[Any, Body(description="one rt.certificate/1 record, a list of them, or {\"records\": [...]}")],
    principal: CurrentPrincipal,
    producer: ProducerDep,
    settings: SettingsDep,
    db: Db,
    response: Response,
) -> dict[str, Any]:
    """Submit certificate records; they are validated here and stored by the chain consumer via Kafka.

    Each record is written to the audit log in a transaction committed once Kafka has acknowledged them all
    (rolled back, with nothing audited, when Kafka refuses)."""
    try:
        records = _parse_batch(body)
    except ApiError as exc:
        _refused(producer, settings, body, principal, exc)
        raise
    for rec in records:
        _check_submitter(principal, rec)
    headers = [submitter(principal).header()]
    record_audit_many(db, principal.name, [("certificate.submit", f"certificate:{r.certificate_no}", _audited(r))
                                           for r in records])
    try:
        futures = [producer.send(settings.topic_certificates, key=rec.certificate_no.encode(),
                                 value=canonical_json(canonical_record(rec)), headers=headers) for rec in records]
        producer.flush(timeout=10)
        for future in futures:
            future.get(timeout=10)
    except KafkaError as exc:
        raise ApiError(503, "unavailable", f"could not queue the records: {exc}") from None
    db.commit()
    items = [{"certificate_no": r.certificate_no, "location": f"/v1/certificates/{r.certificate_no}"}
             for r in records]
    if len(items) == 1 and not isinstance(body, list) and not (isinstance(body, dict) and "records" in body):
        response.headers["Location"] = items[0]["location"]
        return {"status": "queued", **items[0]}
    return {"status": "queued", "count": len(items), "items": items}


# --- reading ----------------------------------------------------------------------


@router.get("/v1/certificates/{number}")
def get_certificate(number: Number, db: Db, principal: CurrentPrincipal) -> dict[str, Any]:
    """One record with its digest (or, while its parents have not arrived, what it waits for)."""
    found = q.record(db, number) or q.held(db, number)
    if found is None or not _visible(principal, found["market_id"], found["holder_id"]):
        raise _not_found(number)
    return {k: v for k, v in found.items() if k not in ("market_id", "holder_id")}


@router.get("/v1/certificates/{number}/trace")
def trace_certificate(
    number: Number, db: Db, principal: ChainReader,
    direction: Literal["up", "down", "both"] = "both", max_depth: Depth = DEFAULT_DEPTH,
) -> dict[str, Any]:
    """The chain around a record as nodes (holder, location, quantity, time) and edges (quantity moved)."""
    _start(db, number, principal)
    found = q.trace(db, number, direction, max_depth, NODE_LIMIT)
    return {"certificate_no": number, "direction": direction, "max_depth": max_depth,
            **_graph(_scoped(found.nodes, principal, found.edges), found.edges), "truncated": found.truncated}


@router.get("/v1/certificates/{number}/verify")
def verify_certificate(number: Number, db: Db, principal: ChainReader,
                       max_depth: Depth = MAX_DEPTH) -> dict[str, Any]:
    """Recompute every digest up the chain; name the first (most upstream) record that no longer matches
    (a record outside the caller's scope is reported without its number)."""
    _start(db, number, principal)
    result = q.verify(db, number, max_depth)
    if principal.role == "regulator" or result["ok"]:
        return result
    up = q.trace(db, number, "up", max_depth, NODE_LIMIT)
    seen = _scoped(up.nodes, principal, up.edges)
    result["alterations"] = [a if a["certificate_no"] in seen else
                             {"certificate_no": None, "hops": a["hops"], "problem": "a record outside your scope "
                              "is missing or no longer matches its digest"} for a in result["alterations"]]
    result["first_altered"] = result["alterations"][0]["certificate_no"]
    return result


def _export_chain(db: Db, number: str, principal: Principal, max_depth: int
                  ) -> tuple[dict[str, CertificateRecord], list[RapidTest]]:
    _start(db, number, principal)
    found = q.trace(db, number, "both", max_depth, NODE_LIMIT)
    nodes = _scoped(found.nodes, principal, found.edges)
    records = q.chain_records(db, nodes)
    if principal.role == "producer":  # name no input lot the producer may not see (another's lot merged in)
        records = {no: r.model_copy(update={"parents": [p for p in r.parents if p.certificate_no in nodes]})
                   for no, r in records.items()}
    lot_codes = sorted({r.lot_code for r in records.values() if r.lot_code})
    return records, q.rapid_tests(db, sorted(records), lot_codes, markets=principal.market_filter())


@router.get("/v1/certificates/{number}/epcis")
def certificate_epcis(number: Number, db: Db, principal: ChainReader, clock: ClockDep,
                      max_depth: Depth = DEFAULT_DEPTH) -> Response:
    """The chain (up and down) and its rapid tests as a GS1 EPCIS 2.0 JSON-LD document."""
    records, tests = _export_chain(db, number, principal, max_depth)
    doc = epcis_document(records, tests, created=clock())
    return Response(canonical_json(doc), media_type="application/ld+json")


@router.get("/v1/certificates/{number}/fsma.csv")
def certificate_fsma(number: Number, db: Db, principal: ChainReader, max_depth: Depth = DEFAULT_DEPTH) -> Response:
    """The chain as an FSMA 204 sortable spreadsheet (CSV), one row per event."""
    records, _ = _export_chain(db, number, principal, max_depth)
    return Response(fsma_csv(records), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{number}-fsma204.csv"'})


# --- recall scope -------------------------------------------------------------------


def _test(t: RapidTest) -> dict[str, Any]:
    out = asdict(t)
    out["failed"] = t.failed
    return out


def _totals(lots: list[dict[str, Any]]) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for lot in lots:
        total[lot["quantity_unit"]] += lot["quantity_value"]
    return dict(total)


def _recall(db: Db, sample: dict[str, Any], principal: Principal, max_depth: int) -> dict[str, Any]:
    if not principal.sees_market(sample["market_id"]):
        raise ApiError(404, "not_found", "no such sample")
    starts = q.start_certificates(db, sample["certificate_no"], sample["lot_code"], sample["market_id"])
    scope = q.recall_scope(db, starts, max_depth, NODE_LIMIT, principal.market_filter())
    down = _scoped(scope["down"]["nodes"], principal)
    tests = scope["tests"]
    by_lot: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in tests:
        by_lot[t.certificate_no].append(_test(t))
    lots = [{**_node(n), "tests": by_lot.get(n["certificate_no"], [])}
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
        "origins": scope["origins"],
        "chain_up": _graph(_scoped(scope["up"]["nodes"], principal), scope["up"]["edges"]),
        "lots": lots,
        "edges": [e for e in scope["down"]["edges"] if e["from"] in down and e["to"] in down],
        "holders": [{"holder_id": h, "role": ns[0]["holder_role"], "lots": sorted(n["certificate_no"] for n in ns),
                     "quantity": _totals(ns)} for h, ns in sorted(holders.items())],
        "stalls": [{"market_id": m, "stall_id": s, "lots": sorted(n["certificate_no"] for n in ns),
                    "quantity": _totals(ns)} for (m, s), ns in sorted(stalls.items())],
        "tests": [_test(t) for t in tests],
        "truncated": scope["truncated"],
    }


@router.get("/v1/readings/{reading_id}/recall-scope")
def reading_recall_scope(reading_id: UUID, db: Db, principal: Reader, max_depth: Depth = MAX_DEPTH) -> dict[str, Any]:
    """From a sample's certificate (or lot code): up to the origin lots, then every lot, holder and stall
    downstream of them, with the rapid tests already run on each."""
    sample = q.reading_sample(db, reading_id, principal.market_filter())
    if sample is None:
        raise ApiError(404, "not_found", f"no reading {reading_id}")
    return _recall(db, sample, principal, max_depth)


@router.get("/v1/failures/{failure_id}/recall-scope")
def failure_recall_scope(failure_id: UUID, db: Db, principal: Reader, max_depth: Depth = MAX_DEPTH) -> dict[str, Any]:
    """The recall scope of a failure's sample (see the reading's recall scope)."""
    sample = q.failure_sample(db, failure_id, principal.market_filter())
    if sample is None:
        raise ApiError(404, "not_found", f"no failure {failure_id}")
    return {"failure_id": str(failure_id), **_recall(db, sample, principal, max_depth)}
