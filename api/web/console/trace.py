"""The trace explorer: a certificate's chain up and down as a graph, its verification, exports, recall scope.

Every answer comes from the API's handlers (``api.routes.certificates``) with the session's
principal, so the explorer shows exactly what the token may see.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import ClockDep, Db
from api.errors import ApiError
from api.routes import certificates as cert_api
from api.routes import recall_scope as recall_api
from api.web.console.deps import Session
from api.web.console.trace_graph import chart_graph
from api.web.templating import language_of, render, translate

router = APIRouter(prefix="/trace")
NUMBER_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DEPTH = 16


def _number(no: str) -> str:
    if not NUMBER_RE.fullmatch(no):
        raise ApiError(404, "not_found", "no such certificate")
    return no


def _graph_names(lang: str) -> dict[str, str]:
    return {"focus": translate(lang, "trace.focus"), "up": translate(lang, "trace.upstream"),
            "down": translate(lang, "trace.downstream")}


@router.get("")
def trace_page(request: Request, session: Session, db: Db,
               no: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    context: dict[str, Any] = {"section": "trace", "no": (no or "").strip(), "found": None}
    number = context["no"]
    if number:
        if not NUMBER_RE.fullmatch(number):
            context["error"] = "trace.bad_number"
            return render(request, "console/templates/trace.html", context, status=422)
        try:
            record = cert_api.get_certificate(number, db, session.principal)
        except ApiError as exc:
            if exc.status != 404:
                raise
            context["error"] = "trace.not_found"
            return render(request, "console/templates/trace.html", context, status=404)
        found: dict[str, Any] = {"record": record}
        if record.get("status") == "accepted":
            trace = cert_api.trace_certificate(number, db, session.principal, "both", DEPTH)
            found["trace"] = trace
            found["verify"] = cert_api.verify_certificate(number, db, session.principal, cert_api.MAX_DEPTH)
            found["graph"] = {**chart_graph(trace["nodes"], trace["edges"], number),
                              "names": _graph_names(language_of(request))}
        context["found"] = found
    return render(request, "console/templates/trace.html", context)


@router.get("/{no}/epcis")
def epcis(no: str, session: Session, db: Db, clock: ClockDep) -> Response:
    response = cert_api.certificate_epcis(_number(no), db, session.principal, clock, DEPTH)
    response.headers["Content-Disposition"] = f'attachment; filename="{no}-epcis.jsonld"'
    return response


@router.get("/{no}/fsma.csv")
def fsma(no: str, session: Session, db: Db) -> Response:
    return cert_api.certificate_fsma(_number(no), db, session.principal, DEPTH)


@router.get("/recall/{failure_id}")
def recall(failure_id: UUID, request: Request, session: Session, db: Db) -> Response:
    if session.principal.role not in ("regulator", "operator"):
        raise ApiError(403, "forbidden", "recall scope is for regulators and operators")
    scope = recall_api.failure_recall_scope(failure_id, db, session.principal, recall_api.MAX_DEPTH)
    down_nodes = [{**lot, "side": "down"} for lot in scope["lots"]]
    graph = {**chart_graph(down_nodes, scope["edges"], (scope["start"] or [None])[0]),
             "names": _graph_names(language_of(request))}
    return render(request, "console/templates/recall.html", {"section": "trace", "scope": scope, "graph": graph})
