"""Requests: what any source (API, chat, alert, CLI) asks a workflow to do, normalized."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.planning.models import MAX_STEPS, PlannedOperation
from shared.lib.safe_input import SafeText

RequestSource = Literal["api", "chat", "alert", "cli"]


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
