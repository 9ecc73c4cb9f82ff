"""Error statuses are declared once, centrally (api/openapi.py): every route's 4xx/5xx is the ErrorBody model
with the shared description, and every JSON route names its success model."""

from __future__ import annotations

from typing import Any

from api.app import create_app
from api.openapi import DESCRIPTIONS
from schemas.settings import Settings

#: Answers that are not JSON models: the SSE stream, Prometheus text, EPCIS JSON-LD, FSMA CSV, and 204s.
NOT_JSON = {("get", "/v1/failures/stream"), ("get", "/metrics"), ("get", "/v1/certificates/{number}/epcis"),
            ("get", "/v1/certificates/{number}/fsma.csv")}


def _schema() -> dict[str, Any]:
    return create_app(Settings(database_url="")).openapi()


def test_every_error_status_is_the_error_model_with_the_central_description() -> None:
    for path, operations in _schema()["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if int(status) < 400 or (path == "/healthz" and status == "503"):  # 503: the health body itself
                    continue
                assert response["description"] == DESCRIPTIONS[int(status)], (method, path, status)
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def _typed(schema: dict[str, Any]) -> bool:
    """A named model, a list of them or a choice between them (not a bare ``object``)."""
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _typed(schema.get("items", {}))
    return bool(schema.get("anyOf")) and all(_typed(s) for s in schema["anyOf"])


def test_every_json_route_names_the_model_it_answers() -> None:
    for path, operations in _schema()["paths"].items():
        if not path.startswith(("/v1/", "/healthz")):
            continue
        for method, op in operations.items():
            ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
            if (method, path) in NOT_JSON or set(ok) == {"204"}:
                continue
            for status, response in ok.items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                assert _typed(schema), (method, path, status, schema)
