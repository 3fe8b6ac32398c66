"""Approve from Slack: POST /slack/interactivity signed like Slack signs it, against the service
on real Postgres; the Web API and the response_url are a local stub speaking Slack's format."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.notifications.formats import APPROVE_ACTION, REJECT_ACTION
from tests.helpers import wait_for, wait_status, workflow
from tests.integration.inbox_support import inbox_settings
from tests.integration.slack_support import (
    SIGNING_SECRET,
    click,
    decisions,
    form,
    paused,
    post,
    post_raw,
    reject_dialog,
    signature,
    submission,
)
from tests.testbed.slack_stub import SlackStub


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


def test_a_mapped_approver_approves_from_slack_once(
    api: TestClient, slack: SlackStub, database_url: str
) -> None:
    workflow_id, approval_id = paused(api)
    answered = post(api, click("bob", APPROVE_ACTION, approval_id, slack, "approve"))
    assert answered.status_code == 200, answered.text
    assert decisions(database_url, approval_id) == [("bob", "approve")]
    wait_status(api, workflow_id, "completed")
    update = slack.posted("/response/approve")
    assert len(update) == 1
    assert update[0].body["replace_original"] is True
    assert "approved by bob" in update[0].body["text"]
    record = api.get(f"/approvals/{approval_id}", headers={"X-API-Key": "demo-ops-lead-key"})
    shown = next(a for a in record.json()["actions"] if a["action"] == "approve")["details"]
    assert shown["shown"]["channel"] == "slack"
    repeat = post(api, click("bob", APPROVE_ACTION, approval_id, slack, "again"))
    assert repeat.status_code == 200
    assert "already approved" in slack.posted("/response/again")[0].body["text"]
    assert decisions(database_url, approval_id) == [("bob", "approve")]


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
    workflow_id, approval_id = paused(api)
    pressed = click(who, APPROVE_ACTION, approval_id, slack, who)
    answered = post(api, pressed, age_s=age_s, secret=secret)
    assert answered.status_code == status, answered.text
    assert decisions(database_url, approval_id) == []
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
    workflow_id, approval_id = paused(api)
    clicked = post(api, click("bob", REJECT_ACTION, approval_id, slack, "reject"))
    assert clicked.status_code == 200
    opened = slack.posted("/api/views.open")
    assert len(opened) == 1
    assert opened[0].body["trigger_id"] == "trigger-reject"
    modal = opened[0].body["view"]
    assert modal["type"] == "modal"
    assert decisions(database_url, approval_id) == []

    empty = post(api, submission(modal, "   "))
    assert empty.json()["response_action"] == "errors"
    assert decisions(database_url, approval_id) == []
    done = post(api, submission(modal, "the release freeze is on"))
    assert done.status_code == 200
    assert done.content == b""
    assert decisions(database_url, approval_id) == [("bob", "reject")]
    wait_status(api, workflow_id, "rejected")
    update = wait_for(lambda: slack.posted("/response/reject"), until=bool, what="message updated")
    assert "rejected by bob" in update[0].body["text"]


@pytest.mark.parametrize(
    ("timestamp", "signed", "header"),
    [
        ("abc", None, "X-Slack-Request-Timestamp"),
        ("1.5e9", None, "X-Slack-Request-Timestamp"),
        ("", None, "X-Slack-Request-Timestamp"),
        ("9" * 400, None, "X-Slack-Request-Timestamp"),
        (None, b"v0=\xff\xfe", "X-Slack-Signature"),
    ],
    ids=["letters", "float", "empty", "huge", "signature-not-ascii"],
)
def test_a_malformed_signing_header_is_a_401_naming_it(
    api: TestClient,
    slack: SlackStub,
    database_url: str,
    timestamp: str | None,
    signed: bytes | None,
    header: str,
) -> None:
    workflow_id, approval_id = paused(api)
    body = form(click("bob", APPROVE_ACTION, approval_id, slack, "approve"))
    sent = timestamp if timestamp is not None else str(int(time.time()))
    answered = post_raw(api, body, timestamp=sent, signed=signed or signature(body, sent))
    assert answered.status_code == 401, answered.text
    assert header in answered.json()["detail"]
    assert decisions(database_url, approval_id) == []
    assert workflow(api, workflow_id)["status"] == "awaiting_approval"


@pytest.mark.parametrize(
    "body",
    [b"payload=\xff\xfe", b"payload=" + b"%5B" * 200_000],
    ids=["not-utf8", "nested-too-deep"],
)
def test_an_unreadable_body_is_a_400(api: TestClient, body: bytes) -> None:
    timestamp = str(int(time.time()))
    answered = post_raw(api, body, timestamp=timestamp, signed=signature(body, timestamp))
    assert answered.status_code == 400, answered.text
    assert "payload" in answered.json()["detail"] or "UTF-8" in answered.json()["detail"]


def test_a_decision_stands_when_its_response_url_cannot_be_reached(
    api: TestClient, slack: SlackStub, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    workflow_id, approval_id = paused(api)
    away = "http://127.0.0.1:1/x"
    answered = post(api, click("bob", APPROVE_ACTION, approval_id, slack, "x", response_url=away))
    assert answered.status_code == 200, answered.text
    assert decisions(database_url, approval_id) == [("bob", "approve")]
    wait_status(api, workflow_id, "completed")
    warned = [r for r in caplog.records if "response_url" in r.getMessage()]
    assert warned and getattr(warned[0], "approval_id", None) == approval_id
    rejected_id = paused(api)[1]
    done = post(api, submission(reject_dialog(rejected_id, away), "the release freeze is on"))
    assert done.status_code == 200, done.text
    assert decisions(database_url, rejected_id) == [("bob", "reject")]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "not a url", "http://[::1", "ftp://x/y"])
def test_a_response_url_that_is_not_http_is_refused_before_deciding(
    api: TestClient, slack: SlackStub, database_url: str, url: str
) -> None:
    workflow_id, approval_id = paused(api)
    answered = post(api, click("bob", APPROVE_ACTION, approval_id, slack, "x", response_url=url))
    assert answered.status_code == 400, answered.text
    assert "response_url" in answered.json()["detail"]
    refused = post(api, submission(reject_dialog(approval_id, url), "the release freeze is on"))
    assert refused.status_code == 400, refused.text
    assert "response_url" in refused.json()["detail"]
    assert decisions(database_url, approval_id) == []
    assert workflow(api, workflow_id)["status"] == "awaiting_approval"


def _metadata(approval_id: str, **changed: Any) -> str:
    return json.dumps({"approval_id": approval_id, "shown": None, "response_url": "", **changed})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p, a: {**p, "view": "x"}, "view"),
        (lambda p, a: {**p, "user": "bob"}, "user"),
        (lambda p, a: {**p, "user": {"id": 5}}, "user.id"),
        (lambda p, a: _state(p, "str"), "reason"),
        (lambda p, a: _state(p, {"value": 5}), "value"),
        (lambda p, a: _view(p, private_metadata=5), "private_metadata"),
        (lambda p, a: _view(p, private_metadata=_metadata(a, shown=5)), "shown"),
        (lambda p, a: _view(p, private_metadata=_metadata(a, response_url=5)), "response_url"),
        (lambda p, a: _view(p, private_metadata="[1]"), "private_metadata"),
        (lambda p, a: {**p, "user": {"id": "U\ud800"}}, "user.id"),
        (lambda p, a: _view(p, private_metadata=_metadata(a, shown="\x00")), "shown"),
    ],
    ids=[
        "view-str",
        "user-str",
        "user-id-int",
        "reason-str",
        "value-int",
        "metadata-int",
        "shown-int",
        "response-url-int",
        "metadata-list",
        "user-id-surrogate",
        "shown-nul",
    ],
)
def test_a_submission_of_the_wrong_shape_is_a_400_naming_the_field(
    api: TestClient, slack: SlackStub, database_url: str, change: Any, field: str
) -> None:
    workflow_id, approval_id = paused(api)
    valid = submission(reject_dialog(approval_id, slack.response_url("x")), "freeze")
    answered = post(api, change(valid, approval_id))
    assert answered.status_code == 400, answered.text
    assert field in answered.json()["detail"], answered.json()["detail"]
    assert decisions(database_url, approval_id) == []
    assert workflow(api, workflow_id)["status"] == "awaiting_approval"


def _view(payload: dict[str, Any], **changed: Any) -> dict[str, Any]:
    return {**payload, "view": {**payload["view"], **changed}}


def _state(payload: dict[str, Any], reason_input: Any) -> dict[str, Any]:
    return _view(payload, state={"values": {"reason": {"reason": reason_input}}})


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("bad\x00reason", "U+0000"),
        ("ring \x07", "U+0007"),
        ("\x1b[31mred", "U+001B"),
        ("half \ud800", "surrogate"),
        ("x" * 2001, "2000"),
    ],
    ids=["nul", "bell", "escape", "lone-surrogate", "too-long"],
)
def test_a_reason_the_api_would_refuse_is_a_dialog_error(
    api: TestClient, slack: SlackStub, database_url: str, reason: str, problem: str
) -> None:
    workflow_id, approval_id = paused(api)
    modal = reject_dialog(approval_id, slack.response_url("reject"))
    answered = post(api, submission(modal, reason))
    assert answered.status_code == 200, answered.text
    assert answered.json()["response_action"] == "errors"
    assert problem in answered.json()["errors"]["reason"]
    assert decisions(database_url, approval_id) == []
    assert workflow(api, workflow_id)["status"] == "awaiting_approval"
    assert slack.posted("/response/reject") == []


def test_reject_when_slacks_api_cannot_be_reached_says_so_and_decides_nothing(
    database_url: str, tmp_path: Path, slack: SlackStub
) -> None:
    """views.open failing to connect (not a Slack error reply) was a 500 to the click."""
    settings = inbox_settings(
        database_url,
        tmp_path,
        AGENT_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        AGENT_SLACK_BOT_TOKEN="xoxb-test-token",
        AGENT_SLACK_API_URL="http://127.0.0.1:1/api/",  # nothing listens there
    )
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    with TestClient(create_app(settings, executors=fakes)) as api:
        workflow_id, approval_id = paused(api)
        clicked = post(api, click("bob", REJECT_ACTION, approval_id, slack, "reject"))
        assert clicked.status_code == 200, clicked.text
        told = slack.posted("/response/reject")
        assert len(told) == 1 and "could not open the reason dialog" in told[0].body["text"]
        assert f"/inbox/approvals/{approval_id}" in told[0].body["text"]
        assert decisions(database_url, approval_id) == []
        assert workflow(api, workflow_id)["status"] == "awaiting_approval"
