"""Requests: what any source (API, chat, alert, CLI) asks a workflow to do, normalized."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.planning.models import PlannedOperation

RequestSource = Literal["api", "chat", "alert", "cli", "gateway", "langgraph"]


class WorkRequest(BaseModel):
    """A normalized request from any source: plain text, structured steps, or an alert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: RequestSource = "api"
    requester: str
    text: str | None = Field(default=None, max_length=4000)
    steps: list[PlannedOperation] | None = None
    environment: str | None = None
    alert: dict[str, Any] | None = None
    request_id: str | None = None
    context: dict[str, Any] | None = None
    """What the caller says around the request (the gateway's `context`): shown to the
    planner as data and to the approver beside the plan; never decides anything itself."""
