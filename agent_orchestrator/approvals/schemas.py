"""Request and response bodies of the approval endpoints; a plan is `{"steps": [...]}` both ways."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.approvals.models import ApprovalRecord
from shared.lib.planning.models import Plan
from shared.lib.safe_input import SafeText

# A field a decision body does not know is refused by name, never ignored: `{"steps": [...]}`
# (an edit belongs in `plan`) approved the plan as it stood, and `planHash` skipped the check
# of the hash the approver reviewed.
_DECISION = ConfigDict(extra="forbid")


class ApproveBody(BaseModel):
    model_config = _DECISION

    reason: SafeText | None = Field(default=None, max_length=2000)
    plan: Plan | None = Field(
        default=None,
        description="An edited plan, the same shape GET /approvals/{id} shows: voids this "
        "approval and is re-assessed.",
    )
    plan_hash: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="The plan hash you reviewed; refused if the plan changed.",
    )


class RejectBody(BaseModel):
    model_config = _DECISION

    reason: SafeText = Field(min_length=1, max_length=2000)


class PlanView(BaseModel):
    """The plan under approval, in the shape an edit sends back."""

    steps: list[dict[str, Any]]


class ApprovalView(ApprovalRecord):
    """An approval request with everything an approver needs to decide."""

    plan: PlanView  # type: ignore[assignment]

    @classmethod
    def of(cls, record: ApprovalRecord) -> ApprovalView:
        return cls.model_validate({**record.model_dump(), "plan": {"steps": record.plan}})


class ExpiryView(BaseModel):
    expired: int
