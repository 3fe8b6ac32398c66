"""Approval requests in Postgres: create, decide (race-safe), expire, withdraw, claim a resume."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from shared.lib.approvals.listing import Cursor, pending_page, pending_summaries_json
from shared.lib.approvals.models import (
    ApprovalAction,
    ApprovalRecord,
    ApprovalStatus,
    Decision,
    DecisionResult,
)
from shared.lib.approvals.recording import lock_request, not_found, record_decision
from shared.lib.approvals.rows import append_action, request_columns, set_status
from shared.lib.approvals.wakeups import notify_settled
from shared.lib.db.columns import with_columns
from shared.lib.db.pool import Pool, implicit_transaction
from shared.lib.planning.models import Plan

_SELECT_REQUEST = with_columns(
    """
SELECT {request},
       (SELECT count(*) FROM approval_actions a
         WHERE a.approval_id = r.id AND a.action = 'approve') AS approvals_received
  FROM approval_requests r
""",
    request=request_columns("r"),
)
_SELECT_ROW = with_columns("SELECT {request} FROM approval_requests", request=request_columns())
# The request and its `requested` audit row in one statement; nothing when the id exists.
_INSERT = with_columns(
    "WITH created AS (INSERT INTO approval_requests (id, workflow_id, risk_level,"
    " required_approvals, allowed_roles, requester, plan, plan_hash, assessment, context,"
    " timeout_outcome, expires_at, round)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() + %s, %s)"
    " ON CONFLICT (id) DO NOTHING RETURNING {request}),"
    " requested AS (INSERT INTO approval_actions (approval_id, workflow_id, action, actor,"
    " plan_hash, details) SELECT id, workflow_id, 'requested', requester, plan_hash,"
    " jsonb_build_object('risk_level', risk_level) FROM created"
    " RETURNING action, actor, role, reason, plan_hash, details, created_at)"
    " SELECT row_to_json(created) AS request, row_to_json(requested) AS action"
    " FROM created, requested",
    request=request_columns(),
)

_SELECT_ACTIONS = (
    "SELECT approval_id, action, actor, role, reason, plan_hash, details, created_at"
    " FROM approval_actions"
)


class ApprovalStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create(
        self,
        *,
        approval_id: UUID,
        workflow_id: str,
        risk_level: str,
        required_approvals: int,
        allowed_roles: list[str],
        requester: str,
        plan: Plan,
        assessment: dict[str, Any],
        context: dict[str, Any],
        ttl_s: int,
        timeout_outcome: str,
        round_: int,
    ) -> tuple[ApprovalRecord, bool]:
        """Insert the request once (the id is deterministic); say whether it was new."""
        async with implicit_transaction(self._pool) as conn:
            cursor = await conn.execute(
                _INSERT,
                (
                    approval_id,
                    workflow_id,
                    risk_level,
                    required_approvals,
                    allowed_roles,
                    requester,
                    Jsonb(plan.normalized()),
                    plan.hash,
                    Jsonb(assessment),
                    Jsonb(context),
                    timeout_outcome,
                    timedelta(seconds=ttl_s),
                    round_,
                ),
            )
            row = await cursor.fetchone()
            if row is None:  # made before (a re-run of the node): read it as it is now
                return await _read(conn, approval_id), False
            requested = ApprovalAction(**row["action"])
            return ApprovalRecord(**row["request"], actions=[requested]), True

    async def get(self, approval_id: UUID) -> ApprovalRecord:
        async with self._pool.connection() as conn:
            return await _read(conn, approval_id)

    async def get_request(self, approval_id: UUID) -> ApprovalRecord:
        """The request's row alone, in one query: no audit rows, no vote count (0). Enough
        to know its status and who must decide; `get` has the rest."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(_SELECT_ROW + " WHERE id = %s", (approval_id,))
            ).fetchone()
        if row is None:
            raise not_found(approval_id)
        return ApprovalRecord(**row)

    async def for_workflow(self, workflow_id: str) -> list[ApprovalRecord]:
        """Every round's request with its actions: two queries, whatever the rounds."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    _SELECT_REQUEST + " WHERE r.workflow_id = %s ORDER BY r.round, r.created_at",
                    (workflow_id,),
                )
            ).fetchall()
            actions = await (
                await conn.execute(
                    _SELECT_ACTIONS + " WHERE approval_id = ANY(%s) ORDER BY id",
                    ([row["id"] for row in rows],),
                )
            ).fetchall()
        by_request: dict[UUID, list[ApprovalAction]] = {}
        for action in actions:
            by_request.setdefault(action.pop("approval_id"), []).append(ApprovalAction(**action))
        return [ApprovalRecord(**row, actions=by_request.get(row["id"], [])) for row in rows]

    async def list_pending(
        self,
        *,
        requester: str | None = None,
        roles: set[str] | None = None,
        risk_level: str | None = None,
        limit: int = 100,
        offset: int = 0,
        after: Cursor | None = None,
    ) -> list[ApprovalRecord]:
        """Full records of one page, oldest first (see `listing`)."""
        async with self._pool.connection() as conn:
            rows = await pending_page(
                conn, roles=roles, risk_level=risk_level, limit=limit, offset=offset,
                after=after, requester=requester,
            )  # fmt: skip
        return [ApprovalRecord(**row) for row in rows]

    async def pending_summaries_json(
        self,
        *,
        requester: str | None = None,
        roles: set[str] | None = None,
        risk_level: str | None = None,
        limit: int = 100,
        offset: int = 0,
        after: Cursor | None = None,
    ) -> tuple[bytes, int, Cursor | None]:
        """One page as a list shows it (`ApprovalSummary` fields) as JSON written by Postgres
        (UTF-8), its length and its last key: no plan body, assessment, context or actions."""
        async with self._pool.connection() as conn:
            return await pending_summaries_json(
                conn, roles=roles, risk_level=risk_level, limit=limit, offset=offset,
                after=after, requester=requester,
            )  # fmt: skip

    async def decide(
        self,
        *,
        approval_id: UUID,
        actor: str,
        roles: frozenset[str],
        decision: Decision,
        reason: str | None = None,
        plan: Plan | None = None,
        expected_plan_hash: str | None = None,
        shown: dict[str, Any] | None = None,
        claim_resume: bool = False,
    ) -> DecisionResult:
        """Record one decision under a row lock; concurrent calls see each other's effects.
        `shown` (what the decider was shown) goes into the decision row's details. With
        `claim_resume`, a decision that settles the request also claims its resume in the same
        transaction (see `recording`): the caller then resumes the workflow itself."""
        async with implicit_transaction(self._pool) as conn:
            return await record_decision(
                conn,
                approval_id=approval_id,
                actor=actor,
                roles=roles,
                decision=decision,
                reason=reason,
                plan=plan,
                expected_plan_hash=expected_plan_hash,
                shown=shown,
                claim=claim_resume,
            )

    async def resolve(
        self, *, approval_id: UUID, status: ApprovalStatus, actor: str, reason: str
    ) -> ApprovalRecord | None:
        """Expire or withdraw a pending request; None when it was no longer pending."""
        action = {ApprovalStatus.EXPIRED: "expire", ApprovalStatus.WITHDRAWN: "withdraw"}[status]
        async with self._pool.connection() as conn, conn.transaction():
            row = await lock_request(conn, approval_id)
            if row["status"] != ApprovalStatus.PENDING:
                return None
            await set_status(conn, approval_id, status)
            await append_action(
                conn,
                approval_id=approval_id,
                workflow_id=row["workflow_id"],
                action=action,
                actor=actor,
                reason=reason,
                plan_hash=row["plan_hash"],
            )
            await notify_settled(conn, approval_id=approval_id, workflow_id=row["workflow_id"])
            return await _read(conn, approval_id)

    async def expire_due(self, *, actor: str, limit: int = 100) -> list[ApprovalRecord]:
        """Expire pending requests past their TTL; replicas skip rows another one holds."""
        async with self._pool.connection() as conn, conn.transaction():
            rows = await (
                await conn.execute(
                    "SELECT id, workflow_id, plan_hash, timeout_outcome FROM approval_requests"
                    " WHERE status = 'pending' AND expires_at <= now() ORDER BY expires_at"
                    " LIMIT %s FOR UPDATE SKIP LOCKED",
                    (limit,),
                )
            ).fetchall()
            for row in rows:
                await set_status(conn, row["id"], ApprovalStatus.EXPIRED)
                await append_action(
                    conn,
                    approval_id=row["id"],
                    workflow_id=row["workflow_id"],
                    action="expire",
                    actor=actor,
                    reason=f"no decision within its TTL; outcome: {row['timeout_outcome']}",
                    plan_hash=row["plan_hash"],
                )
        return [await self.get(row["id"]) for row in rows]

    async def pending_by_tier(self) -> dict[str, int]:
        """How many requests wait for a decision now, per risk level."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT risk_level, count(*) AS n FROM approval_requests"
                    " WHERE status = 'pending' AND expires_at > now() GROUP BY risk_level"
                )
            ).fetchall()
        return {row["risk_level"]: row["n"] for row in rows}

    async def claim_resume(self, approval_id: UUID) -> bool:
        """Compare-and-set: exactly one caller wins the right to resume a decided request."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE approval_requests SET resumed_at = now() WHERE id = %s"
                " AND status <> 'pending' AND resumed_at IS NULL RETURNING id",
                (approval_id,),
            )
            return await cursor.fetchone() is not None

    async def decided_not_resumed(self, *, older_than_s: float) -> list[UUID]:
        """Settled requests whose resume was claimed long ago or never: candidates to recover.
        An edit (`superseded`) counts: its resume starts the next round, and without it the
        workflow awaits an approval nobody can decide any more."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT r.id FROM approval_requests r JOIN workflows w ON w.id = r.workflow_id"
                    " WHERE r.status IN ('approved', 'rejected', 'expired', 'withdrawn',"
                    " 'superseded')"
                    " AND w.status = 'awaiting_approval' AND w.approval_id = r.id"
                    " AND coalesce(r.resumed_at, r.decided_at, r.created_at)"
                    "     < now() - make_interval(secs => %s)",
                    (older_than_s,),
                )
            ).fetchall()
        return [row["id"] for row in rows]


async def _read(conn: AsyncConnection[DictRow], approval_id: UUID) -> ApprovalRecord:
    row = await (
        await conn.execute(_SELECT_REQUEST + " WHERE r.id = %s", (approval_id,))
    ).fetchone()
    if row is None:
        raise not_found(approval_id)
    actions = await (
        await conn.execute(_SELECT_ACTIONS + " WHERE approval_id = %s ORDER BY id", (approval_id,))
    ).fetchall()
    return ApprovalRecord(
        **row,
        actions=[
            ApprovalAction(**{k: v for k, v in a.items() if k != "approval_id"}) for a in actions
        ],
    )
