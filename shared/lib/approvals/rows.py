"""Row-level writes shared by the approval store: the audit row and the status."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from shared.lib.approvals.models import ApprovalAction, ApprovalRecord, ApprovalStatus
from shared.lib.db.columns import columns


def request_columns(alias: str = "") -> str:
    """The columns of `approval_requests` an `ApprovalRecord` reads (its votes and audit rows
    are counted or read beside them)."""
    return columns(ApprovalRecord, alias=alias, omit=("approvals_received", "actions"))


async def set_status(
    conn: AsyncConnection[DictRow], approval_id: UUID, status: ApprovalStatus
) -> None:
    await conn.execute(
        "UPDATE approval_requests SET status = %s, decided_at = now() WHERE id = %s",
        (status.value, approval_id),
    )


async def append_action(
    conn: AsyncConnection[DictRow],
    *,
    approval_id: UUID,
    workflow_id: str,
    action: str,
    actor: str,
    role: str | None = None,
    reason: str | None = None,
    plan_hash: str | None = None,
    details: dict[str, Any] | None = None,
) -> ApprovalAction:
    """Append one audit row; the row as written."""
    row = await (
        await conn.execute(
            "INSERT INTO approval_actions (approval_id, workflow_id, action, actor, role, reason,"
            " plan_hash, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING action, actor, role, reason, plan_hash, details, created_at",
            (
                approval_id,
                workflow_id,
                action,
                actor,
                role,
                reason,
                plan_hash,
                Jsonb(details or {}),
            ),
        )
    ).fetchone()
    assert row is not None  # an INSERT ... RETURNING answers its row
    return ApprovalAction(**row)
