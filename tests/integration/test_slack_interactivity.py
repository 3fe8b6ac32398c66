"""Approve from Slack: POST /slack/interactivity signed like Slack signs it, against the service
on real Postgres; the Web API and the response_url are a local stub speaking Slack's format."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.notifications.formats import APPROVE_ACTION, REJECT_ACTION
from tests.helpers import orchestrate, wait_for, wait_status, workflow
from tests.integration.inbox_support import inbox_settings
from tests.testbed.slack_stub import SlackStub

SIGNING_SECRET = "slack-signing-secret-for-tests-0001"
SLACK_IDS = {"alice": "U0DEMOALICE", "bob": "U0DEMOBOB", "stranger": "U0NOBODY"}


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub


@pytest.fixture
def api(database_url: str, tmp_path: Path, slack: SlackStub) -> Iterator[TestClient]:
    settings = inbox_settings(
        database_url,
        tmp_path,
        AGENT_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        AGENT_SLACK_BOT_TOKEN="xoxb-test-token",
        AGENT_SLACK_API_URL=slack.api_url,
    )
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    with TestClient(create_app(settings, executors=fakes)) as client:
        yield client


def _post(
    api: TestClient, payload: dict[str, Any], *, age_s: int = 0, secret: str = SIGNING_SECRET
) -> Any:
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()) - age_s)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    return api.post("/slack/interactivity", content=body, headers=headers)


def _click(who: str, action_id: str, approval_id: str, slack: SlackStub, name: str) -> Any:
    value = json.dumps({"approval_id": approval_id, "shown": None})
    return {
        "type": "block_actions",
        "user": {"id": SLACK_IDS[who], "username": who},
        "trigger_id": f"trigger-{name}",
        "response_url": slack.response_url(name),
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }


def _decisions(database_url: str, approval_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT actor, action FROM approval_actions WHERE approval_id = %s"
            " AND action IN ('approve', 'reject', 'edit') ORDER BY id",
            (approval_id,),
        ).fetchall()
    return [(actor, action) for actor, action in rows]


def _paused(api: TestClient) -> tuple[str, str]:
    started = orchestrate(api, {"request": "restart web on prod"})
    assert started["status"] == "awaiting_approval", started
    return started["workflow_id"], started["approval_id"]


def test_a_mapped_approver_approves_from_slack_once(
    api: TestClient, slack: SlackStub, database_url: str
) -> None:
    workflow_id, approval_id = _paused(api)
    answered = _post(api, _click("bob", APPROVE_ACTION, approval_id, slack, "approve"))
    assert answered.status_code == 200, answered.text
    assert _decisions(database_url, approval_id) == [("bob", "approve")]
    wait_status(api, workflow_id, "completed")
    update = slack.posted("/response/approve")
    assert len(update) == 1
    assert update[0].body["replace_original"] is True
    assert "approved by bob" in update[0].body["text"]
    record = api.get(f"/approvals/{approval_id}", headers={"X-API-Key": "demo-ops-lead-key"})
    shown = next(a for a in record.json()["actions"] if a["action"] == "approve")["details"]
    assert shown["shown"]["channel"] == "slack"
    repeat = _post(api, _click("bob", APPROVE_ACTION, approval_id, slack, "again"))
    assert repeat.status_code == 200
    assert "already approved" in slack.posted("/response/again")[0].body["text"]
    assert _decisions(database_url, approval_id) == [("bob", "approve")]


@pytest.mark.parametrize(
    ("who", "age_s", "secret", "status"),
    [
        ("bob", 0, "a-different-signing-secret-000", 401),
        ("bob", 6 * 60, SIGNING_SECRET, 401),
        ("stranger", 0, SIGNING_SECRET, 200),
        ("alice", 0, SIGNING_SECRET, 200),
    ],
    ids=["bad-signature", "old-timestamp", "unmapped-user", "requester-own-click"],
)
def test_refused_clicks_change_nothing(
    api: TestClient,
    slack: SlackStub,
    database_url: str,
    who: str,
    age_s: int,
    secret: str,
    status: int,
) -> None:
    workflow_id, approval_id = _paused(api)
    click = _click(who, APPROVE_ACTION, approval_id, slack, who)
    answered = _post(api, click, age_s=age_s, secret=secret)
    assert answered.status_code == status, answered.text
    assert _decisions(database_url, approval_id) == []
    assert workflow(api, workflow_id)["status"] == "awaiting_approval"
    explained = slack.posted(f"/response/{who}")
    if status == 401:
        assert "signature" in answered.json()["detail"]
        assert explained == []
        return
    assert len(explained) == 1
    assert explained[0].body["response_type"] == "ephemeral"
    assert explained[0].body["replace_original"] is False
    expected = "not mapped to an approver" if who == "stranger" else "requested this work"
    assert expected in explained[0].body["text"]


def test_reject_asks_for_a_reason_in_a_dialog_then_rejects(
    api: TestClient, slack: SlackStub, database_url: str
) -> None:
    workflow_id, approval_id = _paused(api)
    clicked = _post(api, _click("bob", REJECT_ACTION, approval_id, slack, "reject"))
    assert clicked.status_code == 200
    opened = slack.posted("/api/views.open")
    assert len(opened) == 1
    assert opened[0].body["trigger_id"] == "trigger-reject"
    modal = opened[0].body["view"]
    assert modal["type"] == "modal"
    assert _decisions(database_url, approval_id) == []

    def submission(reason: str) -> dict[str, Any]:
        state = {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}}
        return {
            "type": "view_submission",
            "user": {"id": SLACK_IDS["bob"]},
            "view": {**modal, "state": state},
        }

    empty = _post(api, submission("   "))
    assert empty.json()["response_action"] == "errors"
    assert _decisions(database_url, approval_id) == []
    done = _post(api, submission("the release freeze is on"))
    assert done.status_code == 200
    assert done.content == b""
    assert _decisions(database_url, approval_id) == [("bob", "reject")]
    wait_status(api, workflow_id, "rejected")
    update = wait_for(lambda: slack.posted("/response/reject"), until=bool, what="message updated")
    assert "rejected by bob" in update[0].body["text"]
