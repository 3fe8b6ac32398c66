"""Refused decision attempts (403, 404, 409): who tried what on which approval and why it was
refused, in an append-only table of their own beside the decisions that took effect."""

from __future__ import annotations

from uuid import UUID

from shared.lib.approvals.models import DecisionRefusal
from shared.lib.db.pool import Pool


class RefusalLog:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record(
        self, *, approval_id: str, actor: str, decision: str, status_code: int, reason: str
    ) -> None:
        """Keep a refused decision attempt (who, what, why) in its own append-only table."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO decision_refusals (approval_id, actor, decision, status_code, reason)"
                " VALUES (%s, %s, %s, %s, %s)",
                (approval_id, actor, decision, status_code, reason),
            )

    async def for_approval(self, approval_id: UUID) -> list[DecisionRefusal]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT actor, decision, status_code, reason, created_at"
                    " FROM decision_refusals WHERE approval_id = %s ORDER BY id",
                    (str(approval_id),),
                )
            ).fetchall()
        return [DecisionRefusal(**row) for row in rows]
