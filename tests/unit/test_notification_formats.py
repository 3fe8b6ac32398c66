"""Notification payloads (generic JSON, Slack) and the signature a receiver checks."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest

from shared.lib.notifications.dispatcher import backoff_delay
from shared.lib.notifications.formats import (
    APPROVE_ACTION,
    REJECT_ACTION,
    plan_summary,
    render,
    sign,
    verify_signature,
)
from shared.lib.notifications.models import DeliveryPolicy, Notification, NotificationEvent

SECRET = "s3cret-shared-with-the-receiver"
APPROVAL_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _notification(**overrides: object) -> Notification:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "event": NotificationEvent.APPROVAL_REQUESTED,
        "occurred_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "title": "Approval needed (high risk)",
        "workflow_id": "wf-1",
        "workflow_status": "awaiting_approval",
        "workflow_url": "https://agent.example/workflows/wf-1",
        "approval_id": APPROVAL_ID,
        "approval_status": "pending",
        "approval_url": f"https://agent.example/approvals/{APPROVAL_ID}",
        "tier": "high",
        "plan_summary": "restart web (prod)",
        "plan": [{"operation": "restart", "target": "web", "environment": "prod", "params": {}}],
        "requester": "alice",
        "required_approvals": 1,
        "approvals_received": 0,
    }
    return Notification.model_validate({**fields, **overrides})


def test_json_body_carries_ids_tier_plan_and_links() -> None:
    body = json.loads(render(_notification(), "json"))
    assert body["version"] == 1
    assert body["event"] == "approval_requested"
    assert body["approval_id"] == str(APPROVAL_ID)
    assert body["tier"] == "high"
    assert body["plan_summary"] == "restart web (prod)"
    assert body["approval_url"] == f"https://agent.example/approvals/{APPROVAL_ID}"
    assert body["workflow_url"] == "https://agent.example/workflows/wf-1"
    assert body["occurred_at"] == "2025-01-02T03:04:05Z"


def test_slack_body_is_text_and_blocks_with_links() -> None:
    body = json.loads(render(_notification(), "slack"))
    assert set(body) == {"text", "blocks"}
    assert "restart web (prod)" in body["text"]
    assert f"/approvals/{APPROVAL_ID}" in body["text"]
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds[0] == "header" and kinds[-2:] == ["context", "actions"]
    shown = json.dumps(body["blocks"])
    assert "high" in shown and str(APPROVAL_ID) in shown
    assert f"<https://agent.example/approvals/{APPROVAL_ID}|Open approval>" in shown
    buttons = body["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == [APPROVE_ACTION, REJECT_ACTION]
    assert all(json.loads(b["value"])["approval_id"] == str(APPROVAL_ID) for b in buttons)


def test_escalation_carries_reason_and_evidence_and_links_to_the_inbox() -> None:
    escalation = Notification(
        id=uuid.uuid4(),
        event=NotificationEvent.ESCALATED,
        occurred_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        title="Escalated: a person must look at this alert",
        reason="prod/agent-db is the agent's own database",
        evidence={"alertname": "PostgresDown", "labels": {"service": "agent-db"}},
        inbox_url="https://agent.example/inbox/pending",
    )
    body = json.loads(render(escalation, "json"))
    assert body["event"] == "escalated"
    assert body["evidence"]["alertname"] == "PostgresDown"
    slack = json.dumps(json.loads(render(escalation, "slack")))
    assert "agent-db is the agent" in slack and "PostgresDown" in slack
    assert "https://agent.example/inbox/pending" in slack
    assert "actions" not in [b["type"] for b in json.loads(render(escalation, "slack"))["blocks"]]


def test_slack_escapes_its_control_characters() -> None:
    body = json.loads(render(_notification(plan_summary="a <b> & c", reason="x>y"), "slack"))
    shown = json.dumps(body["blocks"])
    assert "a &lt;b&gt; &amp; c" in shown
    assert "x&gt;y" in shown


def test_workflow_without_approval_links_to_the_workflow() -> None:
    finished = _notification(
        event=NotificationEvent.WORKFLOW_FINISHED,
        approval_id=None,
        approval_url=None,
        approval_status=None,
        workflow_status="completed",
    )
    body = json.loads(render(finished, "slack"))
    assert "https://agent.example/workflows/wf-1" in body["text"]
    assert "Open approval" not in json.dumps(body)


def test_plan_summary_names_steps_and_counts_the_rest() -> None:
    steps = [{"operation": "restart", "target": f"s{i}", "environment": None} for i in range(7)]
    assert (
        plan_summary(steps)
        == "restart s0; restart s1; restart s2; restart s3; restart s4; and 2 more"
    )
    assert plan_summary([]) == "no plan"


def test_signature_covers_timestamp_and_body() -> None:
    body = render(_notification(), "json")
    timestamp = str(int(time.time()))
    signature = sign(secret=SECRET, timestamp=timestamp, body=body)
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64

    def check(**changes: object) -> bool:
        args: dict[str, object] = {
            "secret": SECRET,
            "body": body,
            "timestamp": timestamp,
            "signature": signature,
        }
        return verify_signature(**{**args, **changes})  # type: ignore[arg-type]

    assert check()
    assert not check(body=body + b" ")
    assert not check(secret="another-secret-of-enough-length")
    assert not check(timestamp=str(int(timestamp) + 1))
    assert not check(signature=None)
    assert not check(timestamp="soon")


def test_signature_recipe_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body, timestamp = b'{"a":1}', "1700000000"
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(secret=SECRET, timestamp=timestamp, body=body) == f"sha256={expected}"


def test_stale_timestamp_is_refused() -> None:
    body, timestamp = b"{}", "1700000000"
    signature = sign(secret=SECRET, timestamp=timestamp, body=body)

    def check(now: float) -> bool:
        return verify_signature(
            secret=SECRET, body=body, timestamp=timestamp, signature=signature, now=now
        )

    assert check(1700000000 + 299)
    assert not check(1700000000 + 301)


@pytest.mark.parametrize("attempt", [1, 2, 3, 8])
def test_backoff_doubles_with_jitter_and_a_cap(attempt: int) -> None:
    policy = DeliveryPolicy(backoff_s=1.0, max_backoff_s=5.0)
    ceiling = min(2.0 ** (attempt - 1), 5.0)
    for _ in range(50):
        assert ceiling / 2 <= backoff_delay(policy, attempt) <= ceiling
