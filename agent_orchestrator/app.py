"""The application factory: everything with a lifetime is built in the lifespan, not at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.routing import Route

from agent_orchestrator import __version__
from agent_orchestrator.alerts.inbound import problems as inbound_problems_router
from agent_orchestrator.alerts.inbound import router as inbound_router
from agent_orchestrator.alerts.routes import router as alerts_router
from agent_orchestrator.approvals.routes import router as approvals_router
from agent_orchestrator.catalog.routes import router as catalog_router
from agent_orchestrator.chat.routes import router as chat_router
from agent_orchestrator.gateway.routes import router as gateway_router
from agent_orchestrator.inbox import mount_inbox
from agent_orchestrator.mcp.http import MCP_PATH, McpRoute, mcp_endpoint
from agent_orchestrator.runtime import start_runtime
from agent_orchestrator.slack.routes import router as slack_router
from agent_orchestrator.system.docs import describe_webhook_security, serve_docs
from agent_orchestrator.system.errors import install_error_handlers
from agent_orchestrator.system.gate import RequestGate, WrongKeyThrottle
from agent_orchestrator.system.heap import startup_heap_frozen
from agent_orchestrator.system.middleware import AccessLogMiddleware, KnownMethodsOnly
from agent_orchestrator.system.routes import router as system_router
from agent_orchestrator.workflows.routes import router as workflows_router
from shared.lib.config import load_agent_config
from shared.lib.db.database import open_database
from shared.lib.execution.protocol import Executor
from shared.lib.settings import Settings
from shared.lib.tracing import configure_tracing, flush_traces

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, executors: Mapping[str, Executor] | None = None) -> FastAPI:
    """The service. `executors` replaces the Docker/SSH/HTTP executors (benchmarks, tests)."""
    config = load_agent_config(settings)  # a bad config file stops here, before any start
    configure_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = await open_database(settings)
        runtime = await start_runtime(settings, database, config, executors=executors)
        app.state.database = database
        app.state.agent_config = runtime.config
        for name in (
            "approvals",
            "workflows",
            "alert_records",
            "ledger",
            "engine",
            "decisions",
            "refusals",
            "chat",
            "alerts",
            "inbound",
            "status",
            "inbox",
            "slack",
            "deliveries",
            "tracker_outbox",
        ):
            setattr(app.state, name, getattr(runtime, name))
        log.info("service started", extra={"embedded_db": database.embedded is not None})
        try:
            async with mcp_endpoint(runtime, settings) as endpoint:
                app.state.mcp_endpoint = endpoint
                with startup_heap_frozen():
                    yield
                app.state.mcp_endpoint = None
        finally:
            await runtime.close()
            await database.close()
            flush_traces()
            log.info("service stopped")

    app = FastAPI(
        title="DevOps agent",
        version=__version__,
        description="Plans typed operations, gates them behind human approval, runs them.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.wrong_keys = WrongKeyThrottle(settings)  # the gate's, and the inbox sign-in's
    install_error_handlers(app)
    serve_docs(app)
    describe_webhook_security(app)
    app.include_router(system_router)
    app.include_router(workflows_router)
    app.include_router(approvals_router)
    app.include_router(chat_router)
    app.include_router(alerts_router)
    app.include_router(inbound_router)
    app.include_router(inbound_problems_router)
    app.include_router(catalog_router)
    app.include_router(gateway_router)
    app.include_router(slack_router)
    mount_inbox(app, settings)
    # An ASGI app, not a FastAPI endpoint: the MCP transport answers with its own streams.
    app.router.routes.append(
        Route(MCP_PATH, McpRoute(), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    # Added innermost first: the gate sees a request after the metrics middleware has started
    # timing it; a method outside the standard set is answered before the metrics count it;
    # and the access log (outermost) sees every answer, a crash's 500 included.
    app.add_middleware(RequestGate, settings=settings, throttle=app.state.wrong_keys)
    _instrument(app)
    app.add_middleware(KnownMethodsOnly)
    app.add_middleware(AccessLogMiddleware)
    return app


def create_app_from_env() -> FastAPI:
    """The factory `serve --workers N` hands uvicorn: each worker reads the same settings."""
    from shared.lib.logs import configure_logging
    from shared.lib.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def _instrument(app: FastAPI) -> None:
    """HTTP metrics in a registry of this app's own, exposed beside the process-wide domain
    metrics: the instrumentator silently drops metrics already in a registry, so a second app
    in one process (tests, benchmarks) would otherwise count nothing."""
    http_registry = CollectorRegistry()
    Instrumentator(excluded_handlers=["/metrics"], registry=http_registry).instrument(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body = generate_latest(REGISTRY) + generate_latest(http_registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
