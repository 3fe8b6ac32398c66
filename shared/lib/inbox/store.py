"""What the inbox pages read: approvals as list rows (pending and decided) with their
workflow's source, and the figures of the `approval_statistics` view; and its sessions, kept
on the server so that signing out ends one."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.lib.db.columns import columns, with_columns
from shared.lib.db.pool import Pool
from shared.lib.notifications.formats import plan_summary

_ROWS = """
SELECT r.id, r.workflow_id, r.status, r.risk_level, r.requester, r.plan, r.round,
       r.required_approvals, r.created_at, r.expires_at, r.decided_at,
       w.source, w.request #>> '{alert,alertname}' AS alertname, w.status AS workflow_status,
       (SELECT count(*) FROM approval_actions a
         WHERE a.approval_id = r.id AND a.action = 'approve') AS approvals_received,
       (SELECT string_agg(a.actor || ' ' || a.action, ', ' ORDER BY a.id) FROM approval_actions a
         WHERE a.approval_id = r.id AND a.action IN ('approve', 'reject', 'edit', 'expire',
                                                      'withdraw')) AS decided_by
  FROM approval_requests r JOIN workflows w ON w.id = r.workflow_id
"""


class InboxRow(BaseModel):
    """One approval as a list shows it."""

    id: UUID
    workflow_id: str
    status: str
    tier: str
    requester: str
    source: str
    targets: list[str]
    environments: list[str]
    summary: str
    round: int
    approvals_received: int
    required_approvals: int
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    workflow_status: str
    decided_by: str | None = None


class ListFilters(BaseModel):
    """The filters a list page offers; an empty value means any."""

    tier: str | None = None
    environment: str | None = None
    source: str | None = None
    status: str | None = None


class TierStatistics(BaseModel):
    risk_level: str
    total: int
    pending: int
    approved: int
    rejected: int
    expired: int
    withdrawn: int
    avg_decision_seconds: float | None = None


_SELECT_STATISTICS = with_columns(
    "SELECT {tier} FROM approval_statistics ORDER BY risk_level", tier=columns(TierStatistics)
)


class InboxStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def pending(
        self, filters: ListFilters, *, requester: str | None = None, limit: int = 200
    ) -> list[InboxRow]:
        """Approvals waiting for a decision now, oldest first; with `requester`, only those
        of the work that principal asked for."""
        clauses = ["r.status = 'pending'", "r.expires_at > now()"]
        return await self._rows(
            clauses, filters, requester, order="r.created_at, r.id", limit=limit
        )

    async def decided(
        self, filters: ListFilters, *, requester: str | None = None, limit: int = 200
    ) -> list[InboxRow]:
        """Approvals no longer pending, most recently decided first; with `requester`, only
        those of the work that principal asked for."""
        clauses = ["r.status <> 'pending'"]
        if filters.status:
            clauses.append("r.status = %(status)s")
        return await self._rows(
            clauses, filters, requester, order="r.decided_at DESC NULLS LAST", limit=limit
        )

    async def sign_in(self, principal: str, *, max_age_s: int) -> str:
        """A new session's id; sessions older than the cookie's life are cleared on the way."""
        session_id = secrets.token_urlsafe(24)
        async with self._pool.connection() as conn, conn.pipeline():
            await conn.execute(
                "DELETE FROM inbox_sessions WHERE created_at < now() - make_interval(secs => %s)",
                (max_age_s,),
            )
            await conn.execute(
                "INSERT INTO inbox_sessions (id, principal) VALUES (%s, %s)",
                (session_id, principal),
            )
        return session_id

    async def signed_in(self, session_id: str, principal: str) -> bool:
        """Whether this session of this principal is still on (not signed out)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT 1 AS on FROM inbox_sessions WHERE id = %s AND principal = %s"
                    " AND ended_at IS NULL",
                    (session_id, principal),
                )
            ).fetchone()
        return row is not None

    async def sign_out(self, session_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE inbox_sessions SET ended_at = now() WHERE id = %s AND ended_at IS NULL",
                (session_id,),
            )

    async def statistics(self) -> list[TierStatistics]:
        """The `approval_statistics` view, one row per tier."""
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_SELECT_STATISTICS)).fetchall()
        return [TierStatistics(**row) for row in rows]

    async def _rows(
        self,
        clauses: list[str],
        filters: ListFilters,
        requester: str | None,
        *,
        order: str,
        limit: int,
    ) -> list[InboxRow]:
        if requester is not None:
            clauses.append("r.requester = %(requester)s")
        if filters.tier:
            clauses.append("r.risk_level = %(tier)s")
        if filters.source:
            clauses.append(
                "(w.source = %(source)s OR w.request #>> '{alert,alertname}' = %(source)s)"
            )
        if filters.environment:
            clauses.append(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(r.plan) s"
                " WHERE s->>'environment' = %(environment)s)"
            )
        # Clauses are the fixed strings above; every value is a named parameter.
        query = f"{_ROWS} WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT %(limit)s"
        params = {**filters.model_dump(), "requester": requester, "limit": limit}
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query.encode(), params)).fetchall()
        return [_row(row) for row in rows]


def _row(row: dict[str, Any]) -> InboxRow:
    plan: list[dict[str, Any]] = row["plan"] or []
    source = f"alert {row['alertname']}" if row["alertname"] else row["source"]
    return InboxRow(
        id=row["id"],
        workflow_id=row["workflow_id"],
        status=row["status"],
        tier=row["risk_level"],
        requester=row["requester"],
        source=source,
        targets=sorted({str(step.get("target")) for step in plan}),
        environments=sorted({str(step.get("environment") or "-") for step in plan}),
        summary=plan_summary(plan),
        round=row["round"],
        approvals_received=row["approvals_received"],
        required_approvals=row["required_approvals"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        decided_at=row["decided_at"],
        workflow_status=row["workflow_status"],
        decided_by=row["decided_by"],
    )
