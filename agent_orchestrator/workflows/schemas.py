"""Request and response bodies of the workflow endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent_orchestrator.approvals.schemas import ApprovalView
from shared.lib.planning.models import MAX_STEPS, PlannedOperation
from shared.lib.risk.models import RiskView
from shared.lib.safe_input import Params, SafeText
from shared.lib.workflows.store import WorkflowEvent, WorkflowRecord

WorkflowId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9._:-]{1,64}$", examples=["wf-0123456789abcdef"])
]

# The three forms, as the schema states them: exactly one of these sets of fields.
_ONE_FORM = {
    "oneOf": [
        {
            "title": "plain text",
            "required": ["request"],
            "not": {"anyOf": [{"required": ["operation"]}, {"required": ["steps"]}]},
        },
        {
            "title": "one operation",
            "required": ["operation", "target"],
            "not": {"anyOf": [{"required": ["request"]}, {"required": ["steps"]}]},
        },
        {
            "title": "steps",
            "required": ["steps"],
            "not": {"anyOf": [{"required": ["request"]}, {"required": ["operation"]}]},
        },
    ]
}


def _request_schema(schema: dict[str, Any]) -> None:
    """Absent, not null: the schema shows each form's fields as plain types, and the forms."""
    for field in schema["properties"].values():
        kinds = [kind for kind in field.pop("anyOf", []) if kind.get("type") != "null"]
        if kinds:
            field.update(kinds[0])
            field.pop("default", None)
    schema.update(_ONE_FORM)


class OrchestrateRequest(BaseModel):
    """Exactly one of: plain text (`request`), one `operation` on a `target`, or `steps`."""

    # A field this endpoint does not know is refused by name, never ignored: a caller who sent
    # `dry_run` or `approved` must not believe it was heard.
    model_config = ConfigDict(json_schema_extra=_request_schema, extra="forbid")

    request: SafeText | None = Field(
        default=None, min_length=1, max_length=4000, examples=["restart web on prod"]
    )
    operation: SafeText | None = Field(
        default=None, min_length=1, max_length=64, examples=["restart"]
    )
    target: SafeText | None = Field(default=None, min_length=1, max_length=128, examples=["web"])
    environment: SafeText | None = Field(default=None, max_length=64, examples=["prod"])
    params: Params = Field(default_factory=dict, description="Only with `operation`.")
    steps: list[PlannedOperation] | None = Field(default=None, min_length=1, max_length=MAX_STEPS)
    reason: SafeText | None = Field(default=None, max_length=1000, examples=["deploy 1.4 is stuck"])

    @model_validator(mode="after")
    def _one_form(self) -> OrchestrateRequest:
        forms = [self.request is not None, self.operation is not None, self.steps is not None]
        if sum(forms) != 1:
            raise ValueError(
                "give exactly one of 'request' (plain text), 'operation' with 'target', or 'steps'"
            )
        if self.operation is not None and not self.target:
            raise ValueError("field 'target' is required with 'operation'")
        if self.operation is None and (self.target is not None or self.params):
            raise ValueError(
                "'target' and 'params' go with 'operation'; with 'request' name the target in "
                "the words, with 'steps' give each step its own"
            )
        return self

    def location_of_step(self, index: int) -> tuple[str | int, ...]:
        """Where step `index` came from in the body, for a 422 that names the field."""
        return ("body", "steps", index) if self.steps is not None else ("body",)

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
    question: str | None = Field(
        default=None, description="With `needs_clarification`: what to say more precisely."
    )
    candidates: list[str] = Field(
        default_factory=list, description="With `needs_clarification`: names that would work."
    )
    rule: str | None = Field(default=None, description="With `rejected`: the rule that refused.")
    merged_into: str | None = None
    """The workflow this request was merged into (same operation on the same target)."""

    @classmethod
    def of(cls, record: WorkflowRecord) -> WorkflowView:
        outcome = record.outcome or {}
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
            question=outcome.get("question"),
            candidates=outcome.get("candidates") or [],
            rule=outcome.get("rule"),
            merged_into=record.merged_into,
        )


class WorkflowListItem(WorkflowView):
    created_at: datetime


class WorkflowDetail(WorkflowView):
    source: str
    requester: str
    request: dict[str, Any]
    pending_approval_id: UUID | None = None
    approvals: list[ApprovalView]
    results: list[dict[str, Any]]
    verification: list[dict[str, Any]]
    executions: list[dict[str, Any]]
    timeline: list[WorkflowEvent]
    created_at: datetime
    finished_at: datetime | None


class ResumeView(BaseModel):
    workflow_id: str
    outcome: str
