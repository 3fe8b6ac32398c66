"""The application factory: everything with a lifetime is built in the lifespan, not at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from agent_orchestrator import __version__
from agent_orchestrator.system.middleware import RequestIdMiddleware
from agent_orchestrator.system.routes import router as system_router
from shared.lib.db.database import open_database
from shared.lib.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = await open_database(settings)
        app.state.database = database
        log.info("service started", extra={"embedded_db": database.embedded is not None})
        try:
            yield
        finally:
            await database.close()
            log.info("service stopped")

    app = FastAPI(
        title="DevOps agent",
        version=__version__,
        description="Plans typed operations, gates them behind human approval, runs them.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(RequestIdMiddleware)
    app.include_router(system_router)
    Instrumentator(excluded_handlers=["/metrics"]).instrument(app).expose(
        app, include_in_schema=False
    )
    return app
