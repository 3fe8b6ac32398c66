"""POST /webhook/sentry and /webhook/github: signals from Sentry and GitHub, each verified the
way its sender signs, into the same alert path as Alertmanager's."""

from __future__ import annotations

from fastapi import APIRouter, Request

from agent_orchestrator.deps import Inbound
from agent_orchestrator.system.errors import AUTHENTICATED, WITH_BODY, responses
from shared.lib.alerts.inbound.models import InboundReply, InboundSource

router = APIRouter(tags=["alerts"], responses=responses(*AUTHENTICATED, *WITH_BODY, 404))


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
