"""The FastAPI app factory: one router per resource, JSON errors, pooled database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from prometheus_client import REGISTRY

from api.deps import Database, Producer
from api.errors import install_error_handlers
from api.metrics import PipelineCollector
from api.openapi import declare_error_responses
from api.routes import (
    admin,
    certificates,
    deadletters,
    devices,
    failures,
    health,
    markets,
    readings,
    recall_scope,
    stats,
    strip_lots,
    thresholds,
)
from api.web.mount import install_web
from schemas.common import utc_now
from schemas.settings import Settings

ROUTERS = (health, readings, deadletters, failures, devices, stats, thresholds, certificates, recall_scope, admin,
           markets, strip_lots)

DESCRIPTION = """\
rapidtrace: food-market rapid testing and product traceability.

Readers publish strip results over MQTT; this API serves readings, failures and
their handling workflow, pass-rate statistics, and the certificate chain.
Authenticate with `Authorization: Bearer <token>`. Errors are
`{"error": {"code": "...", "message": "..."}}`.
"""


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    database = Database(settings.database_url)
    producer = Producer(settings)
    collector = PipelineCollector(settings, database)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        multiproc = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if not multiproc:
            REGISTRY.register(collector)
        try:
            yield
        finally:
            if not multiproc:
                REGISTRY.unregister(collector)
            producer.close()
            database.close()

    app = FastAPI(title="rapidtrace", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.database = database
    app.state.producer = producer
    app.state.pipeline_collector = collector
    app.state.clock = clock or utc_now
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    install_web(app)  # HTML: /console/, public pages, /static/, error pages
    declare_error_responses(app, (module.router for module in ROUTERS))
    return app
