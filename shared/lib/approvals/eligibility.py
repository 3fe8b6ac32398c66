"""Whether a principal may decide on an approval now, asked before any button is offered: the
same rules the decision itself enforces (`authorize_decider`), read off the record."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.lib.approvals.models import ApprovalRecord, ApprovalStatus
from shared.lib.approvals.policy import DecisionSubject, authorize_decider
from shared.lib.errors import DomainError
from shared.lib.principals import Principal


def why_cannot_decide(record: ApprovalRecord, principal: Principal) -> str | None:
    """None when `principal` may approve, reject or edit `record`; else the reason, in words."""
    if record.status is not ApprovalStatus.PENDING:
        return f"this approval is already {record.status.value}; nothing is left to decide"
    expired = record.expires_at <= datetime.now(UTC)
    subject = DecisionSubject(
        approval_id=str(record.id),
        requester=record.requester,
        plan_authors=tuple(record.context.get("plan_authors", [])),
        allowed_roles=tuple(record.allowed_roles),
        risk_level=record.risk_level,
        expires_at=record.expires_at if expired else None,
    )
    try:
        authorize_decider(subject, actor=principal.name, roles=principal.roles)
    except DomainError as refused:
        return str(refused)
    voted = [a.action for a in record.actions if a.actor == principal.name]
    for action in ("approve", "reject"):
        if action in voted:
            return (
                f"you already chose {action} on this approval; each approver counts once "
                f"({record.required_approvals} distinct approvers needed)"
            )
    return None
