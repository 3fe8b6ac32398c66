"""One decision recorded in one transaction, in as few round trips as it can be: the request
locked, then its audit rows read (the repeat check, the approvers and the answer all come from
them), both sent in one round trip; then one statement that appends the decision's audit row
and, when the decision settles the request, also sets its status, (for a decider that resumes
the workflow itself, as `ApprovalService.decide` does) the claim on the resume, and the notice
to other replicas: two round trips, and the Sync that commits.

The audit rows are read by a statement of their own, after the lock: under READ COMMITTED a
statement sees the rows committed before it started, and a sub-query of the locking statement
would not see the vote of the transaction it waited for (that one only refreshes the locked
row). Two approvers voting at once on a two-approval request each counted one vote, and the
request stayed pending with both votes recorded.

Claiming in the decision's own transaction keeps the resume exactly-once: the claim is the
compare-and-set `claim_resume` does (`resumed_at` set on a settled request), taken while the row
lock is held and committed with the settlement, so no other caller can see the request settled
and unclaimed. The decider then hands the resume to its own runner; if it dies first, recovery
picks the resume up once the claim is older than its grace.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from shared.lib.approvals.models import (
    ApprovalAction,
    ApprovalRecord,
    ApprovalStatus,
    Decision,
    DecisionResult,
    GateDecision,
)
from shared.lib.approvals.policy import DecisionSubject, authorize_decider
from shared.lib.approvals.rows import append_action, request_columns
from shared.lib.approvals.wakeups import settled_notice
from shared.lib.db.columns import with_columns
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
    row, actions = await _lock_with_audit(conn, approval_id)
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
    if decision == "edit" and plan is not None and plan.hash == row["plan_hash"]:
        raise InvalidRequestError(
            "field 'plan' is the plan as it stands: an edit that changes nothing would start a "
            "new round and bar you from approving it; approve without 'plan', or change a step"
        )
    edited = plan if decision == "edit" else None
    details: dict[str, Any] = {"plan": edited.normalized()} if edited else {}
    if shown:
        details["shown"] = shown
    deciders = [action.actor for action in actions if action.action == "approve"]
    if decision == "approve":
        deciders.append(actor)  # the row appended below
    gate = _gate(row, decision, deciders, actor=actor, reason=reason, plan=edited)
    vote = {
        "approval_id": approval_id,
        "workflow_id": row["workflow_id"],
        "action": decision,
        "actor": actor,
        "role": role,
        "reason": reason,
        "plan_hash": edited.hash if edited else row["plan_hash"],
        "details": details,
    }
    if gate is None:
        actions.append(await append_action(conn, **vote))
        fields = {k: v for k, v in row.items() if k not in ("past_ttl", "audit")}
    else:
        appended, fields = await _append_and_settle(conn, vote, gate, claim=claim)
        actions.append(appended)
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


_REQUEST_COLUMNS = sql.SQL(request_columns())
# The pending request, locked, with whether its time ran out: alone, or with its audit rows.
_LOCK = with_columns(
    "SELECT {request}, r.expires_at <= now() AS past_ttl FROM approval_requests r"
    " WHERE r.id = %s FOR UPDATE",
    request=request_columns("r"),
)
# Sent after _LOCK in the same pipeline: a statement of its own, so it sees every vote committed
# before the lock was granted (see the module's docstring).
_AUDIT = sql.SQL(
    "SELECT action, actor, role, reason, plan_hash, details, created_at FROM approval_actions"
    " WHERE approval_id = %s ORDER BY id"
)

_APPEND_AND_SETTLE = sql.SQL(
    "WITH appended AS (INSERT INTO approval_actions (approval_id, workflow_id, action, actor,"
    " role, reason, plan_hash, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " RETURNING action, actor, role, reason, plan_hash, details, created_at),"
    " settled AS (UPDATE approval_requests SET status = %s, decided_at = now(){claimed}"
    " WHERE id = %s RETURNING {columns}),"
    " notified AS (SELECT pg_notify(%s, %s))"
    " SELECT row_to_json(appended) AS action, row_to_json(settled) AS request"
    " FROM appended, settled, notified"
)


async def _append_and_settle(
    conn: AsyncConnection[DictRow], vote: dict[str, Any], gate: GateDecision, *, claim: bool
) -> tuple[ApprovalAction, dict[str, Any]]:
    """The settling decision's audit row, the settled status with (when `claim`) the claim on
    the resume, and the notice to other replicas (sent at commit), in one statement."""
    claimed = sql.SQL(", resumed_at = now()" if claim else "")
    channel, payload = settled_notice(
        approval_id=vote["approval_id"], workflow_id=vote["workflow_id"]
    )
    row = await (
        await conn.execute(
            _APPEND_AND_SETTLE.format(claimed=claimed, columns=_REQUEST_COLUMNS),
            (
                vote["approval_id"],
                vote["workflow_id"],
                vote["action"],
                vote["actor"],
                vote["role"],
                vote["reason"],
                vote["plan_hash"],
                Jsonb(vote["details"]),
                _STATUS_OF[gate.outcome].value,
                vote["approval_id"],
                channel,
                payload,
            ),
        )
    ).fetchone()
    assert row is not None  # the request is locked by this transaction
    return ApprovalAction(**row["action"]), dict(row["request"])


async def _lock_with_audit(
    conn: AsyncConnection[DictRow], approval_id: UUID
) -> tuple[DictRow, list[ApprovalAction]]:
    """The pending request's row, locked, then its audit rows read: one round trip in the
    caller's pipeline (`implicit_transaction`). Not a pipeline block of its own: leaving one
    sends a Sync, which would commit the implicit transaction and free the lock mid-decision."""
    locked = await conn.execute(_LOCK, (approval_id,))
    audit = await conn.execute(_AUDIT, (approval_id,))
    row = await locked.fetchone()
    _check_pending(approval_id, row)
    assert row is not None
    return row, [ApprovalAction(**action) for action in await audit.fetchall()]


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
            _LOCK,
            (approval_id,),
        )
    ).fetchone()
    _check_pending(approval_id, row)
    assert row is not None
    return row


def _check_pending(approval_id: UUID, row: DictRow | None) -> None:
    if row is None:
        raise not_found(approval_id)
    if row["status"] != ApprovalStatus.PENDING:
        raise ConflictError(
            f"approval '{approval_id}' is already {row['status']}; nothing was changed"
        )
