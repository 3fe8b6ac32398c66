"""Approval endpoints. Decisions are recorded at once; the resume runs in the background."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from agent_orchestrator.deps import Approvals, CurrentPrincipal, Decisions
from shared.lib.approvals.models import ApprovalRecord, Decision
from shared.lib.approvals.service import DecisionView
from shared.lib.errors import ForbiddenError
from shared.lib.planning.models import Plan

router = APIRouter(tags=["approvals"])

RiskLevel = Annotated[str | None, Query(pattern="^(low|medium|high|critical)$")]


class ApproveBody(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)
    plan: Plan | None = Field(
        default=None, description="An edited plan: voids this approval and is re-assessed."
    )
    plan_hash: str | None = Field(
        default=None, description="The plan hash you reviewed; refused if the plan changed."
    )


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/approvals/pending")
async def list_pending(
    principal: CurrentPrincipal,
    approvals: Approvals,
    role: str | None = None,
    risk_level: RiskLevel = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ApprovalRecord]:
    """Pending approvals, optionally only those a role may decide, or of one risk level."""
    roles = {role} if role else None
    return await approvals.list_pending(
        roles=roles, risk_level=risk_level, limit=limit, offset=offset
    )


@router.get("/approvals/{approval_id}")
async def get_approval(
    approval_id: UUID, principal: CurrentPrincipal, approvals: Approvals
) -> ApprovalRecord:
    """Everything an approver needs: plan, tier and rules, targets' state, rollback."""
    return await approvals.get(approval_id)


@router.post("/approve/{approval_id}", status_code=status.HTTP_202_ACCEPTED)
async def approve(
    approval_id: UUID,
    principal: CurrentPrincipal,
    decisions: Decisions,
    body: ApproveBody | None = None,
) -> DecisionView:
    """Approve (or, with `plan`, edit) a pending request."""
    body = body or ApproveBody()
    decision: Decision = "edit" if body.plan is not None else "approve"
    return await decisions.decide(
        principal=principal,
        approval_id=approval_id,
        decision=decision,
        reason=body.reason,
        plan=body.plan,
        plan_hash=body.plan_hash,
    )


@router.post("/reject/{approval_id}", status_code=status.HTTP_202_ACCEPTED)
async def reject(
    approval_id: UUID,
    body: RejectBody,
    principal: CurrentPrincipal,
    decisions: Decisions,
) -> DecisionView:
    """Reject a pending request; a reason is required."""
    return await decisions.decide(
        principal=principal, approval_id=approval_id, decision="reject", reason=body.reason
    )


class ExpiryView(BaseModel):
    expired: int


@router.post("/approvals/expire")
async def expire_now(principal: CurrentPrincipal, decisions: Decisions) -> ExpiryView:
    """Resolve approvals past their TTL now (the sweeper does this on its own too)."""
    if not principal.has_any({"ops-lead", "admin"}):
        raise ForbiddenError(
            f"'{principal.name}' has roles {sorted(principal.roles)}; expiring approvals "
            "needs ops-lead or admin"
        )
    return ExpiryView(expired=await decisions.expire_due(actor=principal.name))
