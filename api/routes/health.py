"""Liveness with each dependency's state, and Prometheus metrics."""

from __future__ import annotations

import socket
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Database, SettingsDep
from api.metrics import metrics_registry
from schemas.settings import Settings

router = APIRouter(tags=["health"])


def _database_state(database: Database) -> dict[str, Any]:
    try:
        conn = database.getconn()
    except Exception as exc:
        return {"state": "down", "error": getattr(exc, "message", str(exc))}
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT max(version) FROM schema_migrations")
            row = cur.fetchone()
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            ts = cur.fetchone()
        return {"state": "up", "schema_version": row[0] if row else None, "timescaledb": ts[0] if ts else None}
    except Exception as exc:
        return {"state": "down", "error": str(exc).strip()[:200]}
    finally:
        database.putconn(conn)


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


@router.get("/healthz")
def healthz(request: Request, settings: SettingsDep) -> JSONResponse:
    """Liveness and each dependency's state; 503 when a dependency is down."""
    deps = {"database": _database_state(request.app.state.database), "kafka": _kafka_state(settings)}
    ok = all(d["state"] in {"up", "not_configured"} for d in deps.values())
    return JSONResponse({"status": "ok" if ok else "degraded", "dependencies": deps},
                        status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics: bridge and consumer counters, stored readings, dead letters by code, consumer lag."""
    return Response(generate_latest(metrics_registry(request.app.state.pipeline_collector)),
                    media_type=CONTENT_TYPE_LATEST)
