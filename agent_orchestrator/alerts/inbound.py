"""POST /webhook/sentry and /webhook/github: signals from Sentry and GitHub, each verified the
way its sender signs, into the same alert path as Alertmanager's. GET /webhooks/rejections and
/trackers/outbox: what was refused at the door, and what the tracker has not taken yet."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from agent_orchestrator.deps import CurrentPrincipal, Deliveries, Inbound, TrackerOutbox
from agent_orchestrator.system.errors import AUTHENTICATED, WITH_BODY, responses
from shared.lib.alerts.inbound.models import InboundReply, InboundSource
from shared.lib.errors import ForbiddenError
from shared.lib.principals import Principal
from shared.lib.trackers.store import OutboxRow
from shared.lib.workflows.models import READ_ANY_ROLES

router = APIRouter(tags=["alerts"], responses=responses(*AUTHENTICATED, *WITH_BODY, 404))
problems = APIRouter(tags=["alerts"], responses=responses(*AUTHENTICATED, 403, 422))


class Rejection(BaseModel):
    source: str
    delivery_id: str | None
    reason: str
    received_at: datetime


class UndeliveredMessage(BaseModel):
    """A tracker message not delivered yet; `body` is left out (it is what the issue says)."""

    id: int
    tracker: str
    fingerprint: str
    kind: str
    title: str
    status: str
    rounds: int
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, row: OutboxRow) -> UndeliveredMessage:
        return cls(**row.model_dump(exclude={"body", "delivered_at"}))


@router.post("/webhook/sentry")
async def receive_sentry(request: Request, inbound: Inbound) -> InboundReply:
    """Sentry integration-platform webhooks (issue and metric alerts, issue changes)."""
    return await _receive("sentry", request, inbound)


@router.post("/webhook/github")
async def receive_github(request: Request, inbound: Inbound) -> InboundReply:
    """GitHub webhooks: workflow_run, deployment_status, check_suite; ping is answered."""
    return await _receive("github", request, inbound)


async def _receive(source: InboundSource, request: Request, inbound: Inbound) -> InboundReply:
    body = await request.body()  # bounded in size and time by the request gate
    return await inbound.receive(
        source, headers=request.headers, body=body, request_id=request.state.request_id
    )


@problems.get("/webhooks/rejections")
async def list_rejections(
    principal: CurrentPrincipal,
    deliveries: Deliveries,
    source: InboundSource | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Rejection]:
    """Deliveries refused for a bad or missing signature, staleness or no delivery id, newest
    first (approvers, ops leads and admins)."""
    _may_look(principal)
    return [Rejection(**row) for row in await deliveries.rejections(source=source, limit=limit)]


@problems.get("/trackers/outbox")
async def list_undelivered(
    principal: CurrentPrincipal,
    outbox: TrackerOutbox,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[UndeliveredMessage]:
    """Tracker messages not delivered yet (pending, dead letters with their error, abandoned),
    newest first (approvers, ops leads and admins)."""
    _may_look(principal)
    return [UndeliveredMessage.of(row) for row in await outbox.undelivered(limit=limit)]


def _may_look(principal: Principal) -> None:
    if not principal.has_any(READ_ANY_ROLES):
        raise ForbiddenError(
            f"'{principal.name}' may not read the integrations' refusals; ask an approver, "
            "ops lead or admin"
        )
