"""Record a decision on an approval and resume its workflow: one path for REST and chat."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel

from agent_orchestrator.workflows.engine import WorkflowEngine
from shared.lib.approvals.models import Decision
from shared.lib.approvals.store import ApprovalStore
from shared.lib.metrics import APPROVAL_DECISIONS
from shared.lib.planning.models import Plan
from shared.lib.principals import Principal


class DecisionView(BaseModel):
    approval_id: UUID
    workflow_id: str
    status: str
    approvals_received: int
    required_approvals: int
    resumed: bool


async def decide(
    approvals: ApprovalStore,
    engine: WorkflowEngine,
    principal: Principal,
    approval_id: UUID,
    decision: Decision,
    reason: str | None,
    plan: Plan | None = None,
    plan_hash: str | None = None,
) -> DecisionView:
    result = await approvals.decide(
        approval_id=approval_id,
        actor=principal.name,
        roles=principal.roles,
        decision=decision,
        reason=reason,
        plan=plan,
        expected_plan_hash=plan_hash,
    )
    record = result.approval
    APPROVAL_DECISIONS.labels(decision=decision, risk_level=record.risk_level).inc()
    await engine.notifier.approval_decided(
        record, decision=decision, actor=principal.name, reason=reason
    )
    resumed = bool(result.gate) and await engine.resume_decided(approval_id)
    return DecisionView(
        approval_id=record.id,
        workflow_id=record.workflow_id,
        status=record.status,
        approvals_received=record.approvals_received,
        required_approvals=record.required_approvals,
        resumed=resumed,
    )
