"""What chat says of a workflow: "no approval needed" only for one that ran without a gate."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from shared.lib.approvals.models import ApprovalRecord
from shared.lib.chat.replies import merged_gate, workflow
from shared.lib.workflows.store import WorkflowRecord

HIGH = {"tier": "high", "reasons": ["changes production"]}


def _record(status: str, **fields: object) -> WorkflowRecord:
    return WorkflowRecord(
        id="wf-1", status=status, source="chat", requester="alice", request={},
        plan=[{"operation": "stop", "target": "api", "environment": "dev"}], risk=HIGH,
        created_at=datetime.now(UTC), updated_at=datetime.now(UTC),
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("record", "says"),
    [
        (_record("waiting_for_target"), "waits for another workflow that holds the target"),
        (_record("merged", merged_into="wf-0"), "merged into workflow wf-0"),
        (_record("running", approval_id=uuid4()), "It is running."),
        (_record("completed", approval_id=uuid4()), "It is completed."),
        (_record("completed"), "No approval needed; it is completed."),
    ],
)
def test_only_a_run_without_a_gate_needed_no_approval(record: WorkflowRecord, says: str) -> None:
    text = workflow(record, None)
    assert says in text
    if record.approval_id is not None or record.status in ("waiting_for_target", "merged"):
        assert "No approval needed" not in text


def test_a_merged_request_names_the_approval_that_decides_it() -> None:
    approval = ApprovalRecord(
        id=uuid4(), workflow_id="wf-0", status="pending", risk_level="high",
        required_approvals=2, allowed_roles=["approver"], requester="alice", plan=[],
        plan_hash="x", assessment={}, context={}, timeout_outcome="reject", round=1,
        created_at=datetime.now(UTC), expires_at=datetime.now(UTC), approvals_received=1,
    )  # fmt: skip
    owner = _record("awaiting_approval", approval_id=approval.id)
    assert f"approve {approval.id}" in merged_gate(owner, approval)
    assert "(1 of 2 so far)" in merged_gate(owner, approval)
    assert str(approval.id) not in merged_gate(owner, None)  # one the caller may not read
    assert "waits for an approver" in merged_gate(owner, None)
    assert merged_gate(_record("running"), None) == "Workflow wf-1 is running."
