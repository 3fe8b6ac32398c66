"""What an approver is shown of an approval request, in one canonical shape, and its hash.

The inbox page and the Slack message are both rendered from a `ShownApproval`; a decision
records the hash of the one its approver saw, so the workflow page can show that view again and
prove it is the same (the approval's plan, assessment and context never change after creation).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.approvals.models import ApprovalRecord

EVIDENCE_PREVIEW_CHARS = 400
"""How much of one piece of evidence shows before the reader expands it."""


class ShownStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    operation: str
    target: str
    environment: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    undo: str
    """What undoes this step, in words: its inverse operation, or that nothing does."""


class ShownRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    tier: str
    reason: str
    step: int | None = None


class ShownEvidence(BaseModel):
    """One read-only observation made before the pause (logs, health, stats)."""

    model_config = ConfigDict(frozen=True)

    operation: str
    target: str
    status: str
    output: str
    preview: str
    truncated: bool


class ShownApproval(BaseModel):
    """Everything the approval page and the Slack message show about a request."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    workflow_id: str
    tier: str
    plan_hash: str
    steps: list[ShownStep]
    rules: list[ShownRule]
    blast_radius: str
    targets: dict[str, Any]
    evidence: list[ShownEvidence]
    required_approvals: int
    allowed_roles: list[str]
    requester: str

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of this view; a decision records it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def shown_approval(record: ApprovalRecord) -> ShownApproval:
    """The view of `record` every channel renders."""
    return ShownApproval(
        approval_id=str(record.id),
        workflow_id=record.workflow_id,
        tier=record.risk_level,
        plan_hash=record.plan_hash,
        steps=_steps(record),
        rules=[
            ShownRule(
                rule=str(hit.get("rule", "?")),
                tier=str(hit.get("tier", "?")),
                reason=str(hit.get("reason", "")),
                step=hit.get("step"),
            )
            for hit in record.assessment.get("hits", [])
        ],
        blast_radius=blast_radius(record.plan),
        targets=dict(record.context.get("targets") or {}),
        evidence=_evidence(record.context.get("evidence")),
        required_approvals=record.required_approvals,
        allowed_roles=sorted(record.allowed_roles),
        requester=record.requester,
    )


def blast_radius(plan: list[dict[str, Any]]) -> str:
    """How much the plan touches, in words: `2 targets (web, api) in 1 environment (prod)`."""
    targets = sorted({str(step.get("target")) for step in plan})
    environments = sorted({str(step.get("environment") or "-") for step in plan})
    return (
        f"{len(plan)} step{'s' * (len(plan) != 1)} on {len(targets)} target"
        f"{'s' * (len(targets) != 1)} ({', '.join(targets)}) in {len(environments)} environment"
        f"{'s' * (len(environments) != 1)} ({', '.join(environments)})"
    )


def _steps(record: ApprovalRecord) -> list[ShownStep]:
    rollback = record.context.get("rollback") or []
    steps = []
    for index, step in enumerate(record.plan):
        inverse = rollback[index].get("inverse") if index < len(rollback) else None
        undo = f"{inverse} {step.get('target')}" if inverse else "nothing undoes this step"
        steps.append(
            ShownStep(
                index=index + 1,
                operation=str(step.get("operation")),
                target=str(step.get("target")),
                environment=step.get("environment"),
                params=dict(step.get("params") or {}),
                undo=undo,
            )
        )
    return steps


def _evidence(raw: Any) -> list[ShownEvidence]:
    """Evidence as the gathering node left it: a list of {operation, target, status, output}
    (output may be any JSON); anything else is shown as one generic entry."""
    if not raw:
        return []
    items = raw if isinstance(raw, list) else [{"operation": "evidence", "output": raw}]
    shown = []
    for item in items:
        entry = item if isinstance(item, dict) else {"output": item}
        output = entry.get("output", entry.get("data", ""))
        text = output if isinstance(output, str) else json.dumps(output, indent=2, default=str)
        shown.append(
            ShownEvidence(
                operation=str(entry.get("operation", "-")),
                target=str(entry.get("target", "-")),
                status=str(entry.get("status", "-")),
                output=text,
                preview=text[:EVIDENCE_PREVIEW_CHARS],
                truncated=len(text) > EVIDENCE_PREVIEW_CHARS,
            )
        )
    return shown
