"""Votes cast at the same moment (real Postgres, two transactions): the second waits for the
first's row lock and then counts the first's committed vote, so a request that needs both
settles, and one approver voting twice at once gets a 409, not a unique-key error."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

import psycopg
import pytest

from shared.lib.approvals.recording import record_decision
from shared.lib.approvals.store import ApprovalStore
from shared.lib.db.database import Database
from shared.lib.db.pool import Pool, implicit_transaction
from shared.lib.errors import ConflictError
from shared.lib.workflows.store import WorkflowStore
from tests.integration.workflow_support import new_workflow, plan_of

ROLES = {"carol": frozenset({"ops-lead"}), "dave": frozenset({"admin"})}


async def _two_approval_request(pool: Pool) -> uuid.UUID:
    approval_id = uuid.uuid4()
    await ApprovalStore(pool).create(
        approval_id=approval_id,
        workflow_id=await new_workflow(WorkflowStore(pool), "alice"),
        risk_level="critical",
        required_approvals=2,
        allowed_roles=["ops-lead", "admin"],
        requester="alice",
        plan=plan_of(("stop", "prod", "web")),
        assessment={"tier": "critical"},
        context={},
        ttl_s=3600,
        timeout_outcome="reject",
        round_=1,
    )
    return approval_id


def _approve(
    approvals: ApprovalStore, approval_id: uuid.UUID, who: str
) -> Callable[[], Awaitable[object]]:
    """`who`'s approval, to cast once called."""
    return partial(
        approvals.decide, approval_id=approval_id, actor=who, roles=ROLES[who], decision="approve"
    )


async def _waiting_on_a_lock(pool: Pool) -> bool:
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) AS n FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).fetchone()
    return row is not None and row["n"] > 0


async def _while_first_holds(
    pool: Pool, approval_id: uuid.UUID, first: str, second: Callable[[], Awaitable[object]]
) -> asyncio.Task[object]:
    """`first` approves in an open transaction; `second` starts and blocks on its lock; then
    the first commits. Answers the second's task."""
    async with pool.connection() as conn, conn.transaction():
        await record_decision(
            conn, approval_id=approval_id, actor=first, roles=ROLES[first], decision="approve",
            reason=None, plan=None, expected_plan_hash=None, shown=None, claim=False,
        )  # fmt: skip
        waiting: asyncio.Task[object] = asyncio.create_task(second())  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while not await _waiting_on_a_lock(pool):
            assert time.monotonic() < deadline, "the second vote never waited for the lock"
            assert not waiting.done(), waiting
            await asyncio.sleep(0.01)
    return waiting


async def test_two_approvers_at_once_settle_a_request_that_needs_both(database: Database) -> None:
    approvals = ApprovalStore(database.pool)
    approval_id = await _two_approval_request(database.pool)

    second = await _while_first_holds(
        database.pool, approval_id, "carol", _approve(approvals, approval_id, "dave")
    )
    result = await asyncio.wait_for(second, timeout=10)

    gate = result.gate  # type: ignore[attr-defined]
    assert gate is not None and gate.outcome == "approved"
    assert sorted(gate.decided_by) == ["carol", "dave"]
    stored = await approvals.get(approval_id)
    assert (stored.status, stored.approvals_received) == ("approved", 2)


async def test_one_approver_voting_twice_at_once_is_a_conflict(database: Database) -> None:
    approvals = ApprovalStore(database.pool)
    approval_id = await _two_approval_request(database.pool)

    second = await _while_first_holds(
        database.pool, approval_id, "dave", _approve(approvals, approval_id, "dave")
    )
    with pytest.raises(ConflictError, match="already chose approve"):
        await asyncio.wait_for(second, timeout=10)
    stored = await approvals.get(approval_id)
    assert (stored.status, stored.approvals_received) == ("pending", 1)


async def test_a_decision_holds_the_request_locked_until_it_commits(database: Database) -> None:
    """The votes were once read in a pipeline block of their own inside the decision's implicit
    transaction: leaving it sent a Sync, which committed and freed the lock mid-decision (two
    replicas approving at once then both wrote a vote: a unique-key 500)."""
    approval_id = await _two_approval_request(database.pool)
    async with implicit_transaction(database.pool) as conn:
        await record_decision(
            conn, approval_id=approval_id, actor="carol", roles=ROLES["carol"],
            decision="approve", reason=None, plan=None, expected_plan_hash=None, shown=None,
            claim=False,
        )  # fmt: skip
        async with database.pool.connection() as other:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                # NO KEY UPDATE: the vote row's foreign key holds a KEY SHARE lock on the request
                # either way; only the decision's own FOR UPDATE conflicts with this one.
                await other.execute(
                    "SELECT 1 FROM approval_requests WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                    (approval_id,),
                )
    stored = await ApprovalStore(database.pool).get(approval_id)
    assert stored.approvals_received == 1  # committed once the block ended
