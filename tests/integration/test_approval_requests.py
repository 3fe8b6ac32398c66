"""Creating an approval request (real Postgres, the store itself): the request and its
`requested` audit row are written together, answered as they were stored, and a second create
with the same id (a re-run of the node) writes nothing and answers the stored request."""

from __future__ import annotations

import uuid

from shared.lib.approvals.store import ApprovalStore
from shared.lib.db.database import Database
from shared.lib.workflows.store import WorkflowStore
from tests.integration.workflow_support import new_workflow, plan_of

PLAN = plan_of(("restart", "prod", "web"))


async def test_a_request_is_created_once_with_its_requested_row(database: Database) -> None:
    approvals = ApprovalStore(database.pool)
    workflow_id = await new_workflow(WorkflowStore(database.pool), "alice")
    approval_id = uuid.uuid4()
    fields = {
        "approval_id": approval_id,
        "workflow_id": workflow_id,
        "risk_level": "high",
        "required_approvals": 1,
        "allowed_roles": ["approver"],
        "requester": "alice",
        "plan": PLAN,
        "assessment": {"tier": "high"},
        "context": {"summary": "restart web"},
        "ttl_s": 3600,
        "timeout_outcome": "reject",
        "round_": 1,
    }
    created, new = await approvals.create(**fields)
    again, new_again = await approvals.create(**fields)
    stored = await approvals.get(approval_id)

    assert (new, new_again) == (True, False)
    assert created == stored == again
    assert [(a.action, a.actor, a.plan_hash, a.details) for a in stored.actions] == [
        ("requested", "alice", PLAN.hash, {"risk_level": "high"})
    ]
    assert (stored.status, stored.risk_level, stored.plan_hash) == ("pending", "high", PLAN.hash)
    assert stored.expires_at > stored.created_at
