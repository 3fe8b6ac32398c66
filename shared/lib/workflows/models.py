"""Requests: what any source (API, chat, alert, CLI) asks a workflow to do, normalized."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.errors import ForbiddenError
from shared.lib.planning.models import MAX_STEPS, PlannedOperation
from shared.lib.principals import Principal
from shared.lib.safe_input import SafeText

RequestSource = Literal["api", "chat", "alert", "cli", "mcp", "gateway", "langgraph"]


class WorkRequest(BaseModel):
    """A normalized request from any source: plain text, structured steps, or an alert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: RequestSource = "api"
    requester: str
    text: SafeText | None = Field(default=None, max_length=4000)
    steps: list[PlannedOperation] | None = Field(default=None, max_length=MAX_STEPS)
    environment: str | None = None
    alert: dict[str, Any] | None = None
    request_id: str | None = None
    reason: str | None = Field(default=None, max_length=1000)
    """Why the requester wants it, shown to approvers; never read by the planner."""
    context: dict[str, Any] | None = None
    """What the caller says around the request (the gateway's `context`): shown to the
    planner as data and to the approver beside the plan; never decides anything itself."""


# Roles that may read any principal's workflow; anyone else reads only their own.
READ_ANY_ROLES = frozenset({"approver", "ops-lead", "admin"})


def readable_by(principal: Principal, *, requester: str) -> bool:
    """Whether `principal` may read a workflow that `requester` asked for."""
    return principal.name == requester or principal.has_any(READ_ANY_ROLES)


def lists_only_own(principal: Principal) -> str | None:
    """Whose work a listing shows `principal` (pending approvals in REST, chat and the inbox):
    everyone's (None) for the roles that read any workflow, else only their own requests."""
    return None if principal.has_any(READ_ANY_ROLES) else principal.name


def ensure_readable(principal: Principal, *, workflow_id: str, requester: str) -> None:
    """Raise ForbiddenError unless `principal` may read the workflow (REST and the inbox)."""
    if not readable_by(principal, requester=requester):
        raise ForbiddenError(
            f"workflow '{workflow_id}' was requested by someone else; an operator reads only "
            "the workflows they requested (GET /workflows lists yours), approvers read any"
        )
