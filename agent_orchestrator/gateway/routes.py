"""POST /execute-docker-command: the AI Command Gateway's request and response, carried out
as a workflow through the same planner, funnel, risk policy and approval gate."""

from __future__ import annotations

from fastapi import APIRouter, Request

from agent_orchestrator.deps import CurrentPrincipal, Engine, Settings
from agent_orchestrator.system.errors import AUTHENTICATED, WITH_BODY, responses
from shared.lib.gateway import service
from shared.lib.gateway.models import GatewayRequest, GatewayResponse

router = APIRouter(tags=["gateway"], responses=responses(*AUTHENTICATED, *WITH_BODY))


@router.post("/execute-docker-command")
async def execute_docker_command(
    body: GatewayRequest,
    principal: CurrentPrincipal,
    engine: Engine,
    settings: Settings,
    request: Request,
) -> GatewayResponse:
    """Read-only intents answer with their output; changes that need a person answer
    `PENDING_APPROVAL` with the approval's id and link (see docs/gateway.md)."""
    return await service.execute(
        engine=engine,
        body=body,
        requester=principal.name,
        request_id=request.state.request_id,
        public_url=settings.public_url,
    )
