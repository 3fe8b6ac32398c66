"""Approval requests and the decisions recorded on them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.planning.models import Plan


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"


Decision = Literal["approve", "reject", "edit"]
GateOutcome = Literal["approved", "rejected", "expired", "withdrawn", "edited"]


class ApprovalAction(BaseModel):
    """One append-only audit row: who did what to an approval request, and why."""

    action: str
    actor: str
    role: str | None = None
    reason: str | None = None
    plan_hash: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class ApprovalRecord(BaseModel):
    """An approval request with everything an approver needs to decide."""

    id: UUID
    workflow_id: str
    status: ApprovalStatus
    risk_level: str
    required_approvals: int
    allowed_roles: list[str]
    requester: str
    plan: list[dict[str, Any]]
    plan_hash: str
    assessment: dict[str, Any]
    context: dict[str, Any]
    timeout_outcome: str
    round: int
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    resumed_at: datetime | None = None
    approvals_received: int = 0
    actions: list[ApprovalAction] = Field(default_factory=list)


class GateDecision(BaseModel):
    """What resumes a workflow paused at its approval gate."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    outcome: GateOutcome
    decided_by: list[str] = Field(default_factory=list)
    reason: str | None = None
    plan: Plan | None = None


class DecisionResult(BaseModel):
    """The state of an approval after one decision; `gate` is set once it is resolved."""

    approval: ApprovalRecord
    gate: GateDecision | None = None


class DecisionRefusal(BaseModel):
    """A decision attempt that was refused (not allowed, not found, too late, repeated)."""

    actor: str
    decision: str
    status_code: int
    reason: str
    created_at: datetime
