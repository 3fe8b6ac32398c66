"""An alert's recovery ends `withdrawn` once the alerts it answers have resolved, read from their
rows at each point where it would take its target, wait for it or ask for approval. A resolution
is committed with the alert's row, so it holds whenever the run next gets there: after a wait
resumed by the owner's release, after a crash, after planning that outlasted the alert. The
webhook's own withdrawal (the approval, or the waiting run resumed at once) is the fast path;
this is what makes it stick. The rule is the webhook's (docs/alerts.md): only a workflow that
alerts asked for, and only once none of the alerts it answers still fires; a person's request,
with or without alerts merged into it, stays theirs."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from shared.lib.approvals.models import ApprovalStatus
from shared.lib.errors import ConflictError, NotFoundError
from shared.lib.workflows.models import WorkRequest

# Who withdraws, as on the webhook's path (shared/lib/alerts/requests.py: REQUESTER).
WITHDRAWN_BY = "alertmanager"


async def alert_withdrawal(
    ctx: WorkflowContext, state: WorkflowState, *, when: str
) -> dict[str, Any] | None:
    """The decision that ends the run, when alerts asked for it and none of them still fires;
    None otherwise. `when` says where the run was, for the reason."""
    request = WorkRequest.model_validate(state["request"])
    alert = request.alert or {}
    if request.source != "alert" or alert.get("alert_id") is None:
        return None  # a person's request stays theirs
    if not await ctx.alerts_cleared(state["workflow_id"], alert_id=int(alert["alert_id"])):
        return None
    name = alert.get("alertname") or "behind this recovery"
    reason = f"alert {name} resolved {when}; the recovery is no longer needed"
    return {"outcome": "withdrawn", "reason": reason}


async def withdraw_approval(ctx: WorkflowContext, approval_id: UUID, reason: str) -> None:
    """Withdraw the run's own approval request, if there is one still pending (one made just
    before the resolution was seen, or by a run that died before its checkpoint)."""
    try:
        await ctx.approvals.resolve(
            approval_id=approval_id,
            status=ApprovalStatus.WITHDRAWN,
            actor=WITHDRAWN_BY,
            reason=reason,
        )
    except (NotFoundError, ConflictError):
        return  # never made, or settled already (the webhook withdrew it, or a person decided)


def withdrawn(state: WorkflowState) -> bool:
    return (state.get("decision") or {}).get("outcome") == "withdrawn"
