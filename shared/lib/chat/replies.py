"""The words of the chat's replies: what ran, what will run, its risk and why, who decides."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from shared.lib.approvals.models import ApprovalRecord
from shared.lib.chat.models import StepResult
from shared.lib.execution.runner import Refusal
from shared.lib.planning.conversation import Proposal
from shared.lib.planning.models import PlannedOperation
from shared.lib.risk.models import RiskView
from shared.lib.workflows.store import WorkflowRecord

OUTPUT_LINES = 20
OUTPUT_CHARS = 2000


def step_text(step: PlannedOperation) -> str:
    params = ", ".join(f"{name}={value}" for name, value in sorted(step.params.items()))
    where = f" in {step.environment}" if step.environment else ""
    return f"{step.operation} {step.target}{where}" + (f" ({params})" if params else "")


def clarification(proposal: Proposal) -> str:
    text = proposal.question or "What would you like me to do?"
    missing = [name for name in proposal.candidates if name not in text]
    if missing:
        text += f"\nOptions: {', '.join(proposal.candidates)}."
    return text


def refusal(refusals: Sequence[Refusal]) -> str:
    lines = ["I will not run that, and nothing was run:"]
    lines += [f"- {item.operation} {item.target}: {item.reason}" for item in refusals]
    return "\n".join(lines)


def results(items: Sequence[StepResult]) -> str:
    lines = []
    for item in items:
        where = f" in {item.environment}" if item.environment else ""
        head = f"- {item.operation} {item.target}{where}: {item.status}"
        if item.reason:
            head += f" ({item.reason})"
        lines.append(head)
        output = item.output.strip().splitlines()
        shown = output[-OUTPUT_LINES:]
        if len(shown) < len(output) or item.truncated:
            lines.append(f"  (last {len(shown)} lines)")
        lines += [f"  {line}" for line in shown]
        if not output and item.data:
            facts = ", ".join(f"{key}={value}" for key, value in sorted(item.data.items()))
            lines.append(f"  {facts}")
    return "Checked at once (read-only, no approval needed):\n" + "\n".join(lines)


def workflow(record: WorkflowRecord, approval: ApprovalRecord | None) -> str:
    steps = ", ".join(
        step_text(PlannedOperation.model_validate(step)) for step in record.plan or []
    )
    lines = [f"Workflow {record.id}: {steps or 'no steps'}."]
    if record.risk:
        lines.append(f"Risk: {record.risk['tier']}, because:")
        lines += [f"- {reason}" for reason in record.risk.get("reasons", [])] or [
            "- nothing raised it above the catalog's default"
        ]
    if record.status == "awaiting_approval" and approval is not None:
        roles = ", ".join(approval.allowed_roles)
        count = approval.required_approvals
        until = approval.expires_at.astimezone(UTC)
        lines.append(
            f"It waits for {count} approval{'s' if count != 1 else ''} from "
            f"{'distinct people' if count != 1 else 'someone'} with one of the roles {roles}, "
            f"not {approval.requester} (who asked), until {until:%Y-%m-%d %H:%M} UTC."
        )
        lines.append(
            f"Approval id {approval.id}: an approver can say 'approve {approval.id}' in chat, "
            f"or call POST /approve/{approval.id}."
        )
    elif record.status == "failed":
        lines.append(f"It failed: {record.error}.")
    else:
        lines.append(_state(record))
    return "\n".join(lines)


def merged_gate(owner: WorkflowRecord, approval: ApprovalRecord | None) -> str:
    """Where the workflow a request was merged into stands: its gate decides the request."""
    if approval is not None:
        return (
            f"Workflow {owner.id} waits for approval {approval.id} "
            f"({approval.approvals_received} of {approval.required_approvals} so far): an "
            f"approver can say 'approve {approval.id}' in chat, or call POST /approve/"
            f"{approval.id}."
        )
    if owner.status == "awaiting_approval":
        return f"Workflow {owner.id} waits for an approver's decision."
    return f"Workflow {owner.id} is {owner.status}."


def _state(record: WorkflowRecord) -> str:
    """Where a workflow stands when it is neither paused for people nor failed: only a run
    that went ahead without a gate needed no approval."""
    if record.status == "merged":
        return (
            f"It was merged into workflow {record.merged_into}, which already asks for the same "
            "work on the same target; that workflow's approval and outcome are this request's."
        )
    if record.status == "waiting_for_target":
        return (
            "It waits for another workflow that holds the target to end; then its risk is "
            "assessed again, and it asks for approval if that calls for one."
        )
    if record.status in ("planning", "running", "completed") and not record.approval_id:
        return f"No approval needed; it is {record.status}."
    return f"It is {record.status}."


def decided(
    *,
    status: str,
    decision: str,
    workflow_id: str,
    approval_id: object,
    received: int,
    required: int,
) -> str:
    if status == "approved":
        return (
            f"Approved ({received} of {required}); workflow {workflow_id} continues and runs "
            "the plan."
        )
    if status == "rejected":
        return f"Rejected; workflow {workflow_id} stops without running anything."
    return (
        f"Your {decision} is recorded ({received} of {required}); approval {approval_id} "
        f"waits for {required - received} more."
    )


def pending(records: Sequence[ApprovalRecord], *, caller: str) -> str:
    if not records:
        return "Nothing is waiting for approval."
    lines = ["Waiting for approval:"]
    for record in records:
        steps = ", ".join(step_text(PlannedOperation.model_validate(step)) for step in record.plan)
        mine = " (yours: you cannot approve it)" if record.requester == caller else ""
        lines.append(
            f"- {record.id}: {steps}; {record.risk_level} risk, asked by {record.requester}; "
            f"needs {record.required_approvals} of {', '.join(record.allowed_roles)}"
            f" ({record.approvals_received} so far){mine}"
        )
    return "\n".join(lines)


def with_notes(text: str, proposal: Proposal) -> str:
    return "\n".join([text, *(f"(note: {note})" for note in proposal.notes)])


def plan_view(steps: list[PlannedOperation]) -> list[dict[str, Any]]:
    return [step.model_dump(mode="json") for step in steps]


def workflow_fields(record: WorkflowRecord, approval: ApprovalRecord | None) -> dict[str, Any]:
    risk = None
    if record.risk:
        risk = RiskView(tier=record.risk["tier"], reasons=record.risk.get("reasons", []))
    fields: dict[str, Any] = {
        "workflow_id": record.id,
        "plan": record.plan or [],
        "risk": risk,
    }
    if approval is not None:
        fields |= {
            "approval_id": approval.id,
            "required_approvals": approval.required_approvals,
            "allowed_roles": approval.allowed_roles,
        }
    return fields


def approval_event(record: WorkflowRecord, approval: ApprovalRecord) -> dict[str, Any]:
    risk = record.risk or {}
    return {
        "workflow_id": record.id,
        "approval_id": str(approval.id),
        "tier": risk.get("tier"),
        "reasons": risk.get("reasons", []),
        "required_approvals": approval.required_approvals,
        "allowed_roles": approval.allowed_roles,
        "expires_at": approval.expires_at.isoformat(),
    }
