"""Request and response bodies of the workflow endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from shared.lib.approvals.models import ApprovalRecord
from shared.lib.planning.models import PlannedOperation
from shared.lib.risk.models import RiskView
from shared.lib.workflows.store import WorkflowEvent, WorkflowRecord


class OrchestrateRequest(BaseModel):
    """Plain text (`request`), one structured operation, or a list of `steps`."""

    request: str | None = Field(default=None, max_length=4000, examples=["restart web on prod"])
    operation: str | None = Field(default=None, examples=["restart"])
    target: str | None = Field(default=None, examples=["web"])
    environment: str | None = Field(default=None, examples=["prod"])
    params: dict[str, Any] = Field(default_factory=dict)
    steps: list[PlannedOperation] | None = None
    reason: str | None = Field(default=None, max_length=1000, examples=["deploy 1.4 is stuck"])

    @model_validator(mode="after")
    def _one_form(self) -> OrchestrateRequest:
        forms = [self.request is not None, self.operation is not None, self.steps is not None]
        if sum(forms) != 1:
            raise ValueError(
                "give exactly one of 'request' (plain text), 'operation' with 'target', or 'steps'"
            )
        if self.operation is not None and not self.target:
            raise ValueError("field 'target' is required with 'operation'")
        return self

    def structured_steps(self) -> list[PlannedOperation] | None:
        if self.steps is not None:
            return self.steps
        if self.operation is not None and self.target is not None:
            return [
                PlannedOperation(
                    operation=self.operation,
                    target=self.target,
                    environment=self.environment,
                    params=self.params,
                )
            ]
        return None


class WorkflowView(BaseModel):
    workflow_id: str
    status: str
    plan: list[dict[str, Any]] | None
    risk: RiskView | None
    approval_id: UUID | None
    error: str | None = None

    @classmethod
    def of(cls, record: WorkflowRecord) -> WorkflowView:
        risk = None
        if record.risk:
            risk = RiskView(tier=record.risk["tier"], reasons=record.risk.get("reasons", []))
        return cls(
            workflow_id=record.id,
            status=record.status,
            plan=record.plan,
            risk=risk,
            approval_id=record.approval_id if record.status == "awaiting_approval" else None,
            error=record.error,
        )


class WorkflowListItem(WorkflowView):
    created_at: datetime


class WorkflowDetail(WorkflowView):
    source: str
    requester: str
    request: dict[str, Any]
    pending_approval_id: UUID | None = None
    approvals: list[ApprovalRecord]
    results: list[dict[str, Any]]
    verification: list[dict[str, Any]]
    executions: list[dict[str, Any]]
    timeline: list[WorkflowEvent]
    created_at: datetime
    finished_at: datetime | None


class ResumeView(BaseModel):
    workflow_id: str
    outcome: str
