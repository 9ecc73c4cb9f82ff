"""The OpenAPI schema, fuzzed with schemathesis against the real app and a real database and Kafka.

Every operation gets generated requests, valid and invalid, sent with a
regulator's bearer token (so they pass authentication and reach the route):
no answer may be a 5xx, and every error must have the SPEC.md shape
``{"error": {"code": "...", "message": "..."}}``.
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
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from api.app import create_app
from api.auth import issue_token
from schemas.settings import Settings
from storage.db import connect

pytestmark = pytest.mark.integration

#: Endpoints that stream until a client hangs up are left to the SSE tests, which bound them.
UNBOUNDED = {"GET /v1/failures/stream"}
MAX_EXAMPLES = 40


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
            case.call_and_validate(session=client, headers=headers, checks=[not_a_server_error, error_shape])

        fuzz()
