"""A chat turn's reply, its streamed events, and what a session remembers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.chat.store import ChatMessage
from shared.lib.risk.models import RiskView

ChatStatus = Literal[
    "answered",  # read-only work ran at once; the reply holds the results
    "awaiting_approval",  # a workflow waits for approvers (or more of them)
    "running",
    "waiting_for_target",  # the workflow waits for another one that holds its target to end
    "completed",
    "failed",
    "approved",  # the caller's decision resolved an approval
    "rejected",
    "needs_clarification",  # nothing ran: the reply asks a question
    "refused",  # nothing ran: the request or decision is not allowed
]


class StepResult(BaseModel):
    """One read-only operation the chat ran at once."""

    operation: str
    target: str
    environment: str | None
    status: str
    output: str = ""
    truncated: bool = False
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ChatReply(BaseModel):
    session_id: UUID
    reply: str
    status: ChatStatus
    workflow_id: str | None = None
    approval_id: UUID | None = None
    plan: list[dict[str, Any]] = Field(default_factory=list)
    risk: RiskView | None = None
    required_approvals: int | None = None
    allowed_roles: list[str] = Field(default_factory=list)
    results: list[StepResult] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list)
    planner: str | None = None


class ChatHistory(BaseModel):
    session_id: UUID
    principal: str
    context: dict[str, Any]
    created_at: datetime
    messages: list[ChatMessage]


class Mention(BaseModel):
    """A target a message was about."""

    model_config = ConfigDict(frozen=True)

    target: str
    environment: str | None = None

    @property
    def text(self) -> str:
        return f"{self.target} in {self.environment}" if self.environment else self.target


class SessionContext(BaseModel):
    """What a session remembers between messages (chat_sessions.context)."""

    model_config = ConfigDict(extra="ignore")

    last_target: str | None = None
    last_environment: str | None = None
    last_targets: list[Mention] = Field(default_factory=list)
    """Every target the last plan was about: "it" after several is asked about."""
    pending_approval_id: UUID | None = None
    last_workflow_id: str | None = None


@dataclass(frozen=True)
class ChatEvent:
    """One Server-Sent Event of /chat/stream."""

    event: str
    data: dict[str, Any]

    def as_sse(self) -> str:
        return f"event: {self.event}\ndata: {json.dumps(self.data, default=str)}\n\n"
