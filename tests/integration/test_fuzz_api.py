"""The OpenAPI schema, fuzzed with schemathesis against the real app and a real database and Kafka.

Every operation gets generated requests, valid and invalid, sent with a
regulator's bearer token (so they pass authentication and reach the route):
every check of ``schemathesis run --checks all`` applies (no 5xx; every status,
content type, header and body as the schema declares; schema-invalid requests
refused, schema-valid ones accepted), and every error must have the SPEC.md shape
``{"error": {"code": "...", "message": "..."}}``.

Two kinds of schema-valid request may still be refused, narrowly: a ``cursor``
the server never issued (400 ``bad_cursor``: no schema can list the cursors a
server will issue), and, with a 422, requests to the routes of
:data:`UNSTATED_RULES`, whose schemas do not state all their rules yet. Every
other check holds for them too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks, positive_data_acceptance
from schemathesis.python import asgi

from api.app import create_app
from schemas.settings import Settings
from storage.db import connect
from storage.tokens import issue_token

pytestmark = pytest.mark.integration

#: Endpoints that stream until a client hangs up are left to the SSE tests, which bound them.
UNBOUNDED = {"GET /v1/failures/stream"}
MAX_EXAMPLES = 40
load_all_checks()

#: Routes that refuse schema-valid requests (422) by rules their schema does not state, with what schemathesis
#: found: label -> the rules. Each goes when its route states them; never add one (these are others' routes).
UNSTATED_RULES: dict[str, str] = {
    "GET /v1/readings": "result is an alias of device_result: both given must agree",  # i9
    "GET /v1/stats/pass-rate": "since < until, at most 800 days apart; tz must be a known time zone",  # i9
    "GET /v1/strip-lots": "since < until, at most 800 days apart",  # i9
    "POST /v1/thresholds": "which fields each scope takes; the params' known fields",  # i9: a oneOf on scope
    "POST /v1/certificates": "the body is declared as any JSON: 1-1000 rt.certificate/1 records",  # i10
    "PUT /v1/markets/{market_id}": "region_code names a town or village; time_zone a known zone",  # i12a
    "PUT /v1/markets/{market_id}/stations/{station_id}": "hours are HH:MM-HH:MM",  # i12a
}


def _refusal(response: Any) -> tuple[int, str, str]:
    try:
        err = json.loads(response.content)["error"]
        return response.status_code, str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        return response.status_code, "", ""


def accepted_or_stated(ctx: Any, response: Any, case: Any) -> bool | None:
    """``positive_data_acceptance``, but for an unissued cursor and the rules of :data:`UNSTATED_RULES`."""
    status, code, message = _refusal(response)
    if status == 400 and code == "bad_cursor" and (case.query or {}).get("cursor") is not None:
        return None
    if case.operation.label in UNSTATED_RULES and status == 422 and code and message:
        return None
    return positive_data_acceptance(ctx, response, case)


#: ``schemathesis run --checks all``: every built-in check (positive acceptance as above), and the error shape.
ALL_CHECKS = [check for check in CHECKS.get_all() if check is not positive_data_acceptance] + [accepted_or_stated]


def _labels() -> list[str]:
    """Every operation of the OpenAPI document (read from an app that connects to nothing)."""
    listing = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings()))
    labels = [op.ok().label for op in listing.get_all_operations()]  # type: ignore[union-attr]
    return [label for label in labels if label not in UNBOUNDED]


@pytest.fixture
def fuzz_token(db_dsn: str) -> str:
    conn = connect(db_dsn)
    try:
        issued = issue_token(conn, name="fuzzer", role="regulator", rate_per_minute=1_000_000, actor="test")
        conn.commit()
    finally:
        conn.close()
    return issued.token


def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx body is ``{"error": {"code": str, "message": str[, "details": object]}}``."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} error is not JSON: {response.content[:200]!r}") from None
    assert isinstance(body, dict) and set(body) == {"error"}, f"error body has keys {sorted(body)}"
    err = body["error"]
    assert isinstance(err, dict) and set(err) <= {"code", "message", "details"}, err
    assert isinstance(err.get("code"), str) and err["code"], err
    assert isinstance(err.get("message"), str) and err["message"], err
    assert "details" not in err or isinstance(err["details"], dict), err
    return True


@pytest.mark.parametrize("label", _labels())
def test_no_server_errors_and_every_error_in_spec_shape(label: str, settings: Settings, fuzz_token: str) -> None:
    app = create_app(settings.with_overrides(api_auth=True))
    operation = schemathesis.openapi.from_asgi("/openapi.json", app).find_operation_by_label(label)
    assert operation is not None
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    headers = {"Authorization": f"Bearer {fuzz_token}"}

    with asgi.get_client(app) as client:  # type: ignore[arg-type]

        @given(case=cases)
        @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            case.call_and_validate(session=client, headers=headers, checks=[*ALL_CHECKS, error_shape])

        fuzz()
