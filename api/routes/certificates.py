"""Certificates of conformity: submit, read, list held records, trace, verify, export."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import ValidationError

from api.certificate_models import (
    CertificateDetail,
    HeldRecord,
    Queued,
    QueuedMany,
    TraceOut,
    Verification,
)
from api.chain_scope import (
    child_markets,
    graph,
    scoped,
    scoped_records,
    scrub_correction,
    scrub_parents,
    visible,
)
from api.deps import ClockDep, CurrentPrincipal, Db, Principal, ProducerDep, SettingsDep, require_role
from api.errors import ApiError
from api.pagination import Page, decode_cursor, page_of, page_size
from domain.chain import canonical_json, canonical_record
from domain.chain_events import RapidTest
from domain.epcis import epcis_document
from domain.fsma import fsma_csv
from ingest.kafka_out import Outgoing, send_all
from schemas.certificate import CertificateRecord, Kind, Route, Submitter, SubmitterRole
from schemas.deadletter import deadletter_value
from schemas.errors import KafkaFailure
from schemas.settings import Settings
from storage import chain_reads, chain_trace
from storage.audit import record_audit_many

if TYPE_CHECKING:  # the type only: the API sends through ingest.kafka_out.send_all
    from kafka import KafkaProducer

router = APIRouter(tags=["certificates"])
log = logging.getLogger(__name__)

MAX_BATCH = 1000
DEFAULT_DEPTH = 16
MAX_DEPTH = 64
NODE_LIMIT = 5000

Number = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="certificate number")]
Depth = Annotated[int, Query(ge=0, le=MAX_DEPTH, description="hops to follow")]
Regulator = Annotated[Principal, Depends(require_role("regulator"))]
#: Traces, verification and exports: producers too, of their own chains (see "scope").
ChainReader = Annotated[Principal, Depends(require_role("regulator", "operator", "producer"))]


def _not_found(number: str) -> ApiError:
    return ApiError(404, "not_found", f"no certificate {number}")


def _start(db: Db, number: str, principal: Principal) -> dict[str, Any]:
    found = chain_reads.record(db, number)
    if found is None or not visible(principal, found["market_id"], found["holder_id"]):
        raise _not_found(number)
    return found


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
    try:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") is valid JSON but not UTF-8: keep it escaped
        raw = json.dumps(body, separators=(",", ":")).encode()
    reason = f"{exc.message} (from {principal.role} {principal.name!r})"
    try:
        send_all(producer, [Outgoing(settings.topic_deadletter, SUBMIT_ROUTE.encode(),
                                     deadletter_value("http", SUBMIT_ROUTE, raw, exc.code, reason))],
                 doing="recording a refused submission")
    except KafkaFailure as err:
        log.warning("could not record the refused submission as a dead letter: %s", err)


def _audited(rec: CertificateRecord) -> dict[str, Any]:
    return {"kind": rec.kind.value, "holder_id": rec.holder.id, "lot_code": rec.lot_code,
            "market_id": rec.location.market_id, "parents": [p.certificate_no for p in rec.parents]}


@router.post("/v1/certificates", status_code=202, response_model=Queued | QueuedMany)
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
        send_all(producer, [Outgoing(settings.topic_certificates, rec.certificate_no.encode(),
                                     canonical_json(canonical_record(rec)), headers) for rec in records],
                 doing="queueing certificate records")
    except KafkaFailure as exc:
        raise ApiError(503, "unavailable", f"could not queue the records: {exc.__cause__ or exc}") from None
    db.commit()
    items = [{"certificate_no": r.certificate_no, "location": f"/v1/certificates/{r.certificate_no}"}
             for r in records]
    if len(items) == 1 and not isinstance(body, list) and not (isinstance(body, dict) and "records" in body):
        response.headers["Location"] = items[0]["location"]
        return {"status": "queued", **items[0]}
    return {"status": "queued", "count": len(items), "items": items}


# --- reading ----------------------------------------------------------------------


@router.get("/v1/certificates", response_model=Page[HeldRecord])
def list_certificates(
    db: Db, settings: SettingsDep, clock: ClockDep, _: Regulator,
    state: Annotated[Literal["held"], Query(description="held: records waiting for a parent (or the record "
                                                        "they correct) that has not arrived")],
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[HeldRecord]:
    """Held records, oldest first, with their age and what they wait for (regulators)."""
    size = page_size(limit, settings)
    after = None
    if cursor:
        at, no = decode_cursor(cursor, 2)
        if not isinstance(at, str) or not isinstance(no, str):
            raise ApiError(400, "bad_cursor", "cursor is not one this API issued")
        after = (at, no)
    found = chain_reads.held_records(db, after, size + 1)
    now = clock()
    return page_of(found, size, lambda h: [h["held_at"].isoformat(), h["certificate_no"]],
                   lambda h: HeldRecord(**{**h, "age_s": round((now - h["held_at"]).total_seconds(), 3)}))


@router.get("/v1/certificates/{number}", response_model=CertificateDetail)
def get_certificate(number: Number, db: Db, principal: CurrentPrincipal) -> dict[str, Any]:
    """One record with its digest (or, while its parents have not arrived, what it waits for). Children and the
    correction outside the caller's scope are counted (``children_outside_scope``, ``superseded``), not named."""
    found = chain_reads.record(db, number, child_markets(principal)) or chain_reads.held(db, number)
    if found is None or not visible(principal, found["market_id"], found["holder_id"]):
        raise _not_found(number)
    if found["status"] == "accepted":
        found = scrub_parents(principal, scrub_correction(principal, found))
    hidden = ["market_id", "holder_id", "superseded_by_market", "superseded_by_holder", "parent_lots"]
    if principal.role != "regulator":
        hidden.append("submitter")
    return {k: v for k, v in found.items() if k not in hidden}


@router.get("/v1/certificates/{number}/trace", response_model=TraceOut)
def trace_certificate(
    number: Number, db: Db, principal: ChainReader,
    direction: Literal["up", "down", "both"] = "both", max_depth: Depth = DEFAULT_DEPTH,
) -> dict[str, Any]:
    """The chain around a record as nodes (holder, location, quantity, time) and edges (quantity moved)."""
    _start(db, number, principal)
    found = chain_trace.trace(db, number, direction, max_depth, NODE_LIMIT)
    return {"certificate_no": number, "direction": direction, "max_depth": max_depth,
            **graph(scoped(found.nodes, principal, found.edges), found.edges), "truncated": found.truncated}


@router.get("/v1/certificates/{number}/verify", response_model=Verification)
def verify_certificate(number: Number, db: Db, principal: ChainReader,
                       max_depth: Depth = MAX_DEPTH) -> dict[str, Any]:
    """Recompute every digest up the chain; name the first (most upstream) record that no longer matches
    (a record outside the caller's scope is reported without its number)."""
    _start(db, number, principal)
    result = chain_trace.verify(db, number, max_depth)
    if principal.role == "regulator" or result["ok"]:
        return result
    up = chain_trace.trace(db, number, "up", max_depth, NODE_LIMIT)
    seen = scoped(up.nodes, principal, up.edges)
    result["alterations"] = [a if a["certificate_no"] in seen else
                             {"certificate_no": None, "hops": a["hops"], "problem": "a record outside your scope "
                              "is missing or no longer matches its digest"} for a in result["alterations"]]
    result["first_altered"] = result["alterations"][0]["certificate_no"]
    return result


def _export_chain(db: Db, number: str, principal: Principal, max_depth: int
                  ) -> tuple[dict[str, CertificateRecord], list[RapidTest]]:
    _start(db, number, principal)
    found = chain_trace.trace(db, number, "both", max_depth, NODE_LIMIT)
    nodes = scoped(found.nodes, principal, found.edges)
    # name no input lot the caller may not see (another holder's lot merged in, another market's lot)
    records = scoped_records(chain_reads.chain_records(db, nodes), principal, set(nodes))
    lot_codes = sorted({r.lot_code for r in records.values() if r.lot_code})
    return records, chain_reads.rapid_tests(db, sorted(records), lot_codes, markets=principal.market_filter())


@router.get("/v1/certificates/{number}/epcis", responses={
    200: {"content": {"application/ld+json": {}}, "description": "an EPCIS 2.0 JSON-LD document"}})
def certificate_epcis(number: Number, db: Db, principal: ChainReader, clock: ClockDep,
                      max_depth: Depth = DEFAULT_DEPTH) -> Response:
    """The chain (up and down) and its rapid tests as a GS1 EPCIS 2.0 JSON-LD document."""
    records, tests = _export_chain(db, number, principal, max_depth)
    doc = epcis_document(records, tests, created=clock())
    return Response(canonical_json(doc), media_type="application/ld+json")


@router.get("/v1/certificates/{number}/fsma.csv", responses={
    200: {"content": {"text/csv": {}}, "description": "FSMA 204 columns, one row per event"}})
def certificate_fsma(number: Number, db: Db, principal: ChainReader, max_depth: Depth = DEFAULT_DEPTH) -> Response:
    """The chain as an FSMA 204 sortable spreadsheet (CSV), one row per event."""
    records, _ = _export_chain(db, number, principal, max_depth)
    return Response(fsma_csv(records), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{number}-fsma204.csv"'})
