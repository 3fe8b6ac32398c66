"""A request merged into an owner at the very moment the owner's approval is created is on that
approval once, whichever of the two commits first (real Postgres, the stores themselves)."""

from __future__ import annotations

import asyncio
import uuid

from shared.lib.approvals.store import ApprovalStore
from shared.lib.db.database import Database
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.workflows.leases import TargetLeases
from shared.lib.workflows.store import WorkflowStore
from tests.integration.workflow_support import new_workflow

ROUNDS = 25
TARGETS = {("prod", "web"): "restart"}
PLAN = Plan(steps=[PlannedOperation(operation="restart", target="web", environment="prod")])


async def ask(approvals: ApprovalStore, leases: TargetLeases, owner: str) -> uuid.UUID:
    """What the owner's request_approval node does: the approval, then the row names it."""
    approval_id = uuid.uuid4()
    await approvals.create(
        approval_id=approval_id,
        workflow_id=owner,
        risk_level="medium",
        required_approvals=1,
        allowed_roles=["approver"],
        requester="alice",
        plan=PLAN,
        assessment={},
        context={},
        ttl_s=3600,
        timeout_outcome="expire",
        round_=1,
    )
    await leases.name_approval(owner, approval_id)
    return approval_id


async def test_a_merge_racing_the_owners_approval_is_noted_on_it_once(database: Database) -> None:
    workflows, approvals = WorkflowStore(database.pool), ApprovalStore(database.pool)
    leases = TargetLeases(database.pool)
    for _ in range(ROUNDS):
        owner = await new_workflow(workflows, "alice")
        follower = await new_workflow(workflows, "alertmanager")
        claimed = await leases.claim(
            workflow_id=owner, requester="alice", source="api", targets=TARGETS
        )
        assert claimed.outcome == "owned"

        async def owner_asks(owner: str = owner) -> uuid.UUID:
            return await ask(approvals, leases, owner)

        approval_id, merged = await asyncio.gather(
            owner_asks(),
            leases.claim(
                workflow_id=follower, requester="alertmanager", source="alert", targets=TARGETS
            ),
        )
        assert merged.outcome == "merged" and merged.owner == owner
        record = await approvals.get(approval_id)
        noted = [a for a in record.actions if a.action == "merged"]
        assert [(a.actor, a.details["workflow_id"]) for a in noted] == [("alertmanager", follower)]
        await leases.finish(owner, "completed")
