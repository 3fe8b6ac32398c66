"""One decision recorded in one transaction, in as few round trips as it can be: the request
locked, its audit rows read once (the repeat check, the approvers and the answer all come from
them), the decision's row appended, and, when the decision settles the request, its status and
(for a decider that resumes the workflow itself, as `ApprovalService.decide` does) the claim on
the resume written by one UPDATE.

Claiming in the decision's own transaction keeps the resume exactly-once: the claim is the
compare-and-set `claim_resume` does (`resumed_at` set on a settled request), taken while the row
lock is held and committed with the settlement, so no other caller can see the request settled
and unclaimed. The decider then hands the resume to its own runner; if it dies first, recovery
picks the resume up once the claim is older than its grace.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from shared.lib.approvals.models import (
    ApprovalAction,
    ApprovalRecord,
    ApprovalStatus,
    Decision,
    DecisionResult,
    GateDecision,
)
from shared.lib.approvals.policy import DecisionSubject, authorize_decider
from shared.lib.approvals.rows import append_action
from shared.lib.approvals.wakeups import notify_settled
from shared.lib.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.lib.planning.models import Plan


async def record_decision(
    conn: AsyncConnection[DictRow],
    *,
    approval_id: UUID,
    actor: str,
    roles: frozenset[str],
    decision: Decision,
    reason: str | None,
    plan: Plan | None,
    expected_plan_hash: str | None,
    shown: dict[str, Any] | None,
    claim: bool,
) -> DecisionResult:
    """Record one decision inside the caller's transaction (see the module's docstring);
    with `claim`, a settling decision also claims the resume for the caller."""
    row = await lock_request(conn, approval_id)
    actions = [
        ApprovalAction(**action)
        for action in await (
            await conn.execute(
                "SELECT action, actor, role, reason, plan_hash, details, created_at"
                " FROM approval_actions WHERE approval_id = %s ORDER BY id",
                (approval_id,),
            )
        ).fetchall()
    ]
    role = authorize_decider(
        DecisionSubject(
            approval_id=str(row["id"]),
            requester=row["requester"],
            plan_authors=tuple(row["context"].get("plan_authors", [])),
            allowed_roles=tuple(row["allowed_roles"]),
            risk_level=row["risk_level"],
            expires_at=row["expires_at"] if row["past_ttl"] else None,
        ),
        actor=actor,
        roles=roles,
    )
    _refuse_repeat(row, actions, actor=actor)
    if expected_plan_hash and expected_plan_hash != row["plan_hash"]:
        raise ConflictError(
            f"approval '{approval_id}' is bound to plan {row['plan_hash'][:12]}, not "
            f"{expected_plan_hash[:12]}; review the current plan and decide again"
        )
    if decision == "reject" and not (reason and reason.strip()):
        raise InvalidRequestError("field 'reason' is required to reject; say why")
    if decision == "edit" and plan is None:
        raise InvalidRequestError("field 'plan' is required to edit; send the changed plan")
    edited = plan if decision == "edit" else None
    details: dict[str, Any] = {"plan": edited.normalized()} if edited else {}
    if shown:
        details["shown"] = shown
    appended = await append_action(
        conn,
        approval_id=approval_id,
        workflow_id=row["workflow_id"],
        action=decision,
        actor=actor,
        role=role,
        reason=reason,
        plan_hash=edited.hash if edited else row["plan_hash"],
        details=details,
    )
    actions.append(appended)
    deciders = [action.actor for action in actions if action.action == "approve"]
    gate = _gate(row, decision, deciders, actor=actor, reason=reason, plan=edited)
    if gate is not None:
        row = await _settle(conn, row, gate, claim=claim)
    fields = {k: v for k, v in row.items() if k != "past_ttl"}
    approval = ApprovalRecord(**fields, approvals_received=len(deciders), actions=actions)
    return DecisionResult(approval=approval, gate=gate)


def _gate(
    row: DictRow,
    decision: Decision,
    deciders: list[str],
    *,
    actor: str,
    reason: str | None,
    plan: Plan | None,
) -> GateDecision | None:
    """What the decision settles, if it settles the request."""
    approval_id = str(row["id"])
    if decision == "reject":
        return GateDecision(
            approval_id=approval_id, outcome="rejected", decided_by=[actor], reason=reason
        )
    if decision == "edit":
        return GateDecision(
            approval_id=approval_id, outcome="edited", decided_by=[actor], reason=reason, plan=plan
        )
    if len(deciders) < row["required_approvals"]:
        return None
    return GateDecision(
        approval_id=approval_id, outcome="approved", decided_by=deciders, reason=reason
    )


_STATUS_OF = {
    "rejected": ApprovalStatus.REJECTED,
    "edited": ApprovalStatus.SUPERSEDED,
    "approved": ApprovalStatus.APPROVED,
}


async def _settle(
    conn: AsyncConnection[DictRow], row: DictRow, gate: GateDecision, *, claim: bool
) -> DictRow:
    """The settled status and (with `claim`) the decider's claim on the resume, in one
    UPDATE; other replicas hear of it at commit."""
    claimed = ", resumed_at = now()" if claim else ""
    settled = await (
        await conn.execute(
            f"UPDATE approval_requests SET status = %s, decided_at = now(){claimed}"  # noqa: S608 (a constant)
            " WHERE id = %s RETURNING *",
            (_STATUS_OF[gate.outcome].value, row["id"]),
        )
    ).fetchone()
    assert settled is not None  # the row is locked by this transaction
    await notify_settled(conn, approval_id=row["id"], workflow_id=row["workflow_id"])
    return settled


def _refuse_repeat(row: DictRow, actions: list[ApprovalAction], *, actor: str) -> None:
    voted = next(
        (a for a in actions if a.actor == actor and a.action in ("approve", "reject")), None
    )
    if voted is not None:
        raise ConflictError(
            f"'{actor}' already chose {voted.action} on approval '{row['id']}'; each "
            f"approver counts once ({row['required_approvals']} distinct approvers needed)"
        )


def not_found(approval_id: UUID) -> NotFoundError:
    return NotFoundError(
        f"approval '{approval_id}' not found; list open ones with GET /approvals/pending"
    )


async def lock_request(conn: AsyncConnection[DictRow], approval_id: UUID) -> DictRow:
    """The pending request's row, locked until the transaction ends; 404 or 409 otherwise."""
    row = await (
        await conn.execute(
            "SELECT *, expires_at <= now() AS past_ttl FROM approval_requests"
            " WHERE id = %s FOR UPDATE",
            (approval_id,),
        )
    ).fetchone()
    if row is None:
        raise not_found(approval_id)
    if row["status"] != ApprovalStatus.PENDING:
        raise ConflictError(
            f"approval '{approval_id}' is already {row['status']}; nothing was changed"
        )
    return row
