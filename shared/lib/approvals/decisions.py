"""Turn a resolved approval request into the decision that resumes its workflow."""

from __future__ import annotations

from shared.lib.approvals.models import ApprovalRecord, ApprovalStatus, GateDecision
from shared.lib.planning.models import Plan

EXPIRY_SWEEPER = "expiry-sweeper"
"""Who expires approvals past their TTL when no person asked for it."""


def gate_decision(record: ApprovalRecord) -> GateDecision | None:
    """The GateDecision a resolved request stands for; None while it is pending."""
    approval_id = str(record.id)
    last = record.actions[-1] if record.actions else None
    reason = last.reason if last else None
    match record.status:
        case ApprovalStatus.APPROVED:
            approvers = [a.actor for a in record.actions if a.action == "approve"]
            return GateDecision(approval_id=approval_id, outcome="approved", decided_by=approvers)
        case ApprovalStatus.REJECTED:
            deciders = [a.actor for a in record.actions if a.action == "reject"]
            return GateDecision(
                approval_id=approval_id, outcome="rejected", decided_by=deciders, reason=reason
            )
        case ApprovalStatus.EXPIRED:
            outcome = "expired" if record.timeout_outcome == "expire" else "rejected"
            expiry = next((a for a in reversed(record.actions) if a.action == "expire"), None)
            return GateDecision(
                approval_id=approval_id,
                outcome=outcome,
                decided_by=[expiry.actor if expiry else EXPIRY_SWEEPER],
                reason=reason or "no decision within the approval's TTL",
            )
        case ApprovalStatus.WITHDRAWN:
            return GateDecision(
                approval_id=approval_id,
                outcome="withdrawn",
                decided_by=[last.actor if last else "?"],
                reason=reason,
            )
        case ApprovalStatus.SUPERSEDED:
            edit = next(a for a in reversed(record.actions) if a.action == "edit")
            return GateDecision(
                approval_id=approval_id,
                outcome="edited",
                decided_by=[edit.actor],
                reason=edit.reason,
                plan=Plan(steps=edit.details["plan"]),
            )
    return None
