"""Liveness with each dependency's state, and Prometheus metrics.

Both answer without a token (load balancers and scrapers have none); ``RT_METRICS_REQUIRE_TOKEN=true``
makes ``/metrics`` ask for one.  ``/healthz`` answers 503 with the same body while a dependency is
down or a consumer found its Kafka log started over in the last ``RT_KAFKA_RESET_ALERT_S`` seconds.
"""

from __future__ import annotations

import socket
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from api.deps import Database, SettingsDep, get_principal
from api.metrics import metrics_registry
from schemas.common import rfc3339
from schemas.settings import Settings
from storage.kafka_resets import recent_resets
from storage.migrate import schema_state

router = APIRouter(tags=["health"])


class DependencyState(BaseModel):
    """One dependency: its state and, by state, what else is known (fields not known stay out)."""

    state: Literal["up", "down", "not_configured", "unknown", "reset"]
    error: str | None = None
    schema_version: int | None = Field(None, description="database: the newest migration applied")
    timescaledb: str | None = Field(None, description="database: the extension's version, null without it")
    bootstrap: str | None = Field(None, description="kafka: the servers")
    resets: int | None = Field(None, description="kafka_log: log restarts seen in the alert window")
    last_reset_at: str | None = None
    topics: list[str] | None = None
    readings_maybe_lost: int | None = None
    message: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyState] = Field(description="database, kafka, and kafka_log with the database up")


def _database_state(database: Database) -> dict[str, Any]:
    try:
        conn = database.getconn()
    except Exception as exc:
        return {"state": "down", "error": getattr(exc, "message", str(exc))}
    try:
        version, timescaledb = schema_state(conn)
        return {"state": "up", "schema_version": version, "timescaledb": timescaledb}
    except Exception as exc:
        return {"state": "down", "error": str(exc).strip()[:200]}
    finally:
        database.putconn(conn)


def _kafka_log_state(database: Database, settings: Settings) -> dict[str, Any]:
    """A Kafka log that started over under the consumers (memory-only broker restarted, topic recreated)."""
    try:
        conn = database.getconn()
    except Exception as exc:
        return {"state": "unknown", "error": getattr(exc, "message", str(exc))}
    try:
        summary = recent_resets(conn, settings.kafka_reset_alert_s, settings.topic_readings)
        conn.rollback()
    except Exception as exc:
        return {"state": "unknown", "error": str(exc).strip()[:200]}
    finally:
        database.putconn(conn)
    if not summary.count:
        return {"state": "up"}
    return {
        "state": "reset",
        "resets": summary.count,
        "last_reset_at": rfc3339(summary.last_at) if summary.last_at else None,
        "topics": summary.topics,
        "readings_maybe_lost": summary.readings_maybe_lost,
        "message": f"the Kafka log started over; up to {summary.readings_maybe_lost} readings the bridge had "
                   "handed to Kafka were not yet stored and may be gone (see the consumer logs)",
    }


def _kafka_state(settings: Settings) -> dict[str, Any]:
    if not settings.kafka_bootstrap:
        return {"state": "not_configured"}
    errors = []
    for server in settings.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "localhost", int(port or 9092)), timeout=1.0):
                return {"state": "up", "bootstrap": settings.kafka_bootstrap}
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
    return {"state": "down", "error": "; ".join(errors)}


@router.get("/healthz", response_model=Health,
            responses={503: {"model": Health, "description": "a dependency is down (the same body)"}})
def healthz(request: Request, settings: SettingsDep) -> JSONResponse:
    """Liveness and each dependency's state; 503 (same body) when degraded. No token needed."""
    database = request.app.state.database
    deps = {"database": _database_state(database), "kafka": _kafka_state(settings)}
    if deps["database"]["state"] == "up":
        deps["kafka_log"] = _kafka_log_state(database, settings)
    ok = all(d["state"] in {"up", "not_configured", "unknown"} for d in deps.values())
    health = Health(status="ok" if ok else "degraded",
                    dependencies={name: DependencyState(**state) for name, state in deps.items()})
    return JSONResponse(health.model_dump(mode="json", exclude_unset=True), status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus metrics: bridge and consumer counters, stored readings, dead letters by code, consumer lag.

    No token needed unless ``RT_METRICS_REQUIRE_TOKEN`` is set."""
    if settings.metrics_require_token:
        get_principal(request, settings)
    return Response(generate_latest(metrics_registry(request.app.state.pipeline_collector)),
                    media_type=CONTENT_TYPE_LATEST)
