"""What a caller may ask for: the operation catalog, the targets, and who the caller is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from agent_orchestrator.deps import Config, CurrentPrincipal, Settings
from agent_orchestrator.system.errors import AUTHENTICATED, responses
from shared.lib.mcp.models import TargetSummary, target_summaries

router = APIRouter(tags=["catalog"], responses=responses(*AUTHENTICATED))


class CallerView(BaseModel):
    name: str
    roles: list[str]
    inbox_url: str
    """Prefix of the links where approvals are decided: add the approval id."""


@router.get("/catalog")
async def catalog(principal: CurrentPrincipal, config: Config) -> dict[str, Any]:
    """Every operation the agent may plan and run, with its typed parameters."""
    return config.catalog.model_dump(mode="json")


@router.get("/targets")
async def targets(principal: CurrentPrincipal, config: Config) -> list[TargetSummary]:
    """Targets by environment, with kind, tags and protection (no hosts or credentials)."""
    return target_summaries(config.targets)


@router.get("/me")
async def me(principal: CurrentPrincipal, settings: Settings) -> CallerView:
    """The principal this API key belongs to."""
    return CallerView(
        name=principal.name,
        roles=sorted(principal.roles),
        inbox_url=settings.public_url.rstrip("/") + "/inbox/approvals/",
    )
