"""Liveness, readiness and status: /health says the process runs, /ready that it can do work,
/status what it can reach (each dependency probed, bounded, at once)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from agent_orchestrator import __version__
from agent_orchestrator.deps import CurrentPrincipal, Db, Status
from agent_orchestrator.system.errors import AUTHENTICATED, responses
from shared.lib.db.database import schema_is_current
from shared.lib.status.models import StatusReport

router = APIRouter(tags=["system"])
log = logging.getLogger(__name__)

READY_PROBE_S = 2.0
"""How long /ready waits for the database; an orchestrator's probe should not wait longer."""


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    database: str
    migrations: str


@router.get("/health")
async def health() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/ready", responses={503: {"model": Readiness, "description": "Not ready"}})
async def ready(database: Db, response: Response) -> Readiness:
    """Ready when the database answers within 2 s and its schema is current. The reason given
    is generic; the database's own error goes to the log, not to anonymous callers."""
    try:
        async with asyncio.timeout(READY_PROBE_S):
            current = await schema_is_current(database, timeout_s=READY_PROBE_S)
    except Exception as error:  # any database failure means "not ready", reported as data
        log.warning("readiness probe failed", extra={"error": repr(error)})
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(status="unavailable", database="unreachable", migrations="unknown")
    if not current:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(status="unavailable", database="ok", migrations="pending")
    return Readiness(status="ready", database="ok", migrations="current")


@router.get("/status", responses=responses(*AUTHENTICATED))
async def status_report(principal: CurrentPrincipal, checks: Status) -> StatusReport:
    """Every component with its state (up, down, unconfigured), latency and last error.

    Always 200 when authenticated: a component that is down is data, not a failure of this
    endpoint. Each probe is bounded and all run at once, so the answer comes within ~2 s."""
    return await checks.report()


# Load balancers probe with HEAD: the same answers, without a body (the server drops it).
router.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/ready", ready, methods=["HEAD"], include_in_schema=False)
