"""Approval endpoints. Decisions are recorded at once; the resume runs in the background."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from agent_orchestrator.approvals.schemas import (
    ApprovalView,
    ApproveBody,
    ExpiryView,
    RejectBody,
)
from agent_orchestrator.deps import Approvals, Catalog, CurrentPrincipal, Decisions
from agent_orchestrator.system.errors import AUTHENTICATED, WITH_BODY, responses
from agent_orchestrator.workflows.checks import check_steps
from shared.lib.approvals.models import Decision
from shared.lib.approvals.service import DecisionView
from shared.lib.errors import ForbiddenError

router = APIRouter(tags=["approvals"], responses=responses(*AUTHENTICATED))

MAX_OFFSET = 1_000_000

RiskLevel = Annotated[str | None, Query(pattern="^(low|medium|high|critical)$")]
Role = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


@router.get("/approvals/pending")
async def list_pending(
    principal: CurrentPrincipal,
    approvals: Approvals,
    role: Role = None,
    risk_level: RiskLevel = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[ApprovalView]:
    """Pending approvals, optionally only those a role may decide, or of one risk level."""
    roles = {role} if role else None
    found = await approvals.list_pending(
        roles=roles, risk_level=risk_level, limit=limit, offset=offset
    )
    return [ApprovalView.of(record) for record in found]


@router.get("/approvals/{approval_id}", responses=responses(404))
async def get_approval(
    approval_id: UUID, principal: CurrentPrincipal, approvals: Approvals
) -> ApprovalView:
    """Everything an approver needs: plan, tier and rules, targets' state, rollback."""
    return ApprovalView.of(await approvals.get(approval_id))


@router.post(
    "/approve/{approval_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(*WITH_BODY, 403, 404, 409),
)
async def approve(
    approval_id: UUID,
    principal: CurrentPrincipal,
    decisions: Decisions,
    catalog: Catalog,
    body: ApproveBody | None = None,
) -> DecisionView:
    """Approve (or, with `plan`, edit) a pending request."""
    body = body or ApproveBody()
    if body.plan is not None:
        check_steps(catalog, body.plan.steps, at=lambda index: ("body", "plan", "steps", index))
    decision: Decision = "edit" if body.plan is not None else "approve"
    return await decisions.decide(
        principal=principal,
        approval_id=approval_id,
        decision=decision,
        reason=body.reason,
        plan=body.plan,
        plan_hash=body.plan_hash,
    )


@router.post(
    "/reject/{approval_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(*WITH_BODY, 403, 404, 409),
)
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


@router.post("/approvals/expire", responses=responses(403))
async def expire_now(principal: CurrentPrincipal, decisions: Decisions) -> ExpiryView:
    """Resolve approvals past their TTL now (the sweeper does this on its own too)."""
    if not principal.has_any({"ops-lead", "admin"}):
        raise ForbiddenError(
            f"'{principal.name}' has roles {sorted(principal.roles)}; expiring approvals "
            "needs ops-lead or admin"
        )
    return ExpiryView(expired=await decisions.expire_due(actor=principal.name))
