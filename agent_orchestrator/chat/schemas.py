"""Request and response bodies of the chat endpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from agent_orchestrator.chat.store import ChatMessage
from agent_orchestrator.workflows.schemas import RiskView
from shared.lib.safe_input import SafeText

ChatStatus = Literal[
    "answered",  # read-only work ran at once; the reply holds the results
    "awaiting_approval",  # a workflow waits for approvers (or more of them)
    "running",
    "completed",
    "failed",
    "approved",  # the caller's decision resolved an approval
    "rejected",
    "needs_clarification",  # nothing ran: the reply asks a question
    "refused",  # nothing ran: the request or decision is not allowed
]


class ChatRequest(BaseModel):
    message: SafeText = Field(min_length=1, max_length=4000, examples=["restart web on prod"])
    session_id: UUID | None = Field(
        default=None, description="Continue this conversation; leave out to start one."
    )


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


class SessionContext(BaseModel):
    """What a session remembers between messages (chat_sessions.context)."""

    model_config = ConfigDict(extra="ignore")

    last_target: str | None = None
    last_environment: str | None = None
    pending_approval_id: UUID | None = None
    last_workflow_id: str | None = None


@dataclass(frozen=True)
class ChatEvent:
    """One Server-Sent Event of /chat/stream."""

    event: str
    data: dict[str, Any]

    def as_sse(self) -> str:
        return f"event: {self.event}\ndata: {json.dumps(self.data, default=str)}\n\n"
