"""Every error status a route can answer, declared in the OpenAPI with the ``{"error": ...}`` model, centrally.

Routes need not list them: :func:`declare_error_responses` adds, to each route of
the schema, what the shared machinery can answer there (api/errors.py): 400 (a NUL in the URL, a
cursor this API did not issue), 422 (a request outside the schema), 500 and 503 (the
database or Kafka unavailable) everywhere; 401, 403 and 429 (rate limit) where a
principal is required; 404 where the path names a resource; 409 where the route
writes. A route's own declaration of a status wins. URL parameters state that a NUL
is refused (400) where their own pattern does not already.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.deps import get_principal
from api.errors import ErrorBody

DESCRIPTIONS = {
    400: "Bad request: a NUL character in the URL, or a cursor this API did not issue",
    401: "No bearer token, or an unknown, revoked or expired one",
    403: "The token's role or market scope does not allow this",
    404: "No such resource (or not one this token may see)",
    409: "Conflicts with the current state (an existing entry, a workflow step not allowed now)",
    422: "The request does not match its schema or a rule (the fields are in error.details)",
    429: "The token is over its rate; retry after Retry-After seconds",
    500: "The server failed on this request; it was logged",
    503: "The database or Kafka is unavailable; retry after Retry-After seconds",
}
EVERYWHERE = (400, 422, 500, 503)
AUTHENTICATED = (401, 403, 429)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _needs_principal(dependant: Dependant) -> bool:
    return any(dep.call is get_principal or _needs_principal(dep) for dep in dependant.dependencies)


def error_statuses(route: APIRoute) -> list[int]:
    """The error statuses the shared machinery can answer on ``route``."""
    statuses = set(EVERYWHERE)
    if _needs_principal(route.dependant):
        statuses.update(AUTHENTICATED)
    if route.dependant.path_params:
        statuses.add(404)
    if (route.methods or set()) & WRITES:
        statuses.add(409)
    return sorted(statuses)


#: api/errors.py refuses a NUL anywhere in the URL (PostgreSQL text cannot hold one): the schema says so.
NO_NUL = "^[^\\x00]*$"


def _no_nul(schema: dict[str, Any]) -> None:
    """State the NUL rule on a URL parameter's string schema (one without a pattern of its own)."""
    for alternative in schema.get("anyOf", ()):
        _no_nul(alternative)
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
        schema["pattern"] = NO_NUL


def declare_error_responses(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Declare the error responses of :func:`error_statuses` for every route of ``routers`` in ``app``'s OpenAPI."""
    statuses = {(method, route.path): error_statuses(route)
                for router in routers for route in router.routes if isinstance(route, APIRoute)
                for method in route.methods or ()}
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        body = ErrorBody.model_json_schema()
        body["properties"]["error"] = body.pop("$defs")["ErrorDetail"]  # inline: no name to clash with
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorBody"] = body
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                for parameter in operation.get("parameters", ()):
                    _no_nul(parameter.get("schema", {}))
                responses = operation.setdefault("responses", {})
                for status in statuses.get((method.upper(), path), ()):
                    if str(status) not in responses:
                        responses[str(status)] = {"description": DESCRIPTIONS[status], "content": content}
                if "422" in responses:  # FastAPI's own 422 names its HTTPValidationError: it answers ErrorBody
                    responses["422"] = {"description": DESCRIPTIONS[422], "content": content}
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
