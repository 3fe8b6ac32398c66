"""What the Slack interactivity tests share: requests signed like Slack signs them (or signed
with raw bytes and headers, to send what Slack never would), clicks, dialog submissions, and
what the database recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import psycopg
from fastapi.testclient import TestClient
from httpx import Response

from shared.lib.slack import messages
from tests.helpers import orchestrate
from tests.testbed.slack_stub import SlackStub

SIGNING_SECRET = "slack-signing-secret-for-tests-0001"
SLACK_IDS = {"alice": "U0DEMOALICE", "bob": "U0DEMOBOB", "stranger": "U0NOBODY"}
PATH = "/slack/interactivity"


def signature(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature, over bytes (slack_sdk's generator only takes UTF-8 text)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def post(
    api: TestClient, payload: Any, *, age_s: int = 0, secret: str = SIGNING_SECRET
) -> Response:
    body = form(payload)
    timestamp = str(int(time.time()) - age_s)
    return post_raw(api, body, timestamp=timestamp, signed=signature(body, timestamp, secret))


def post_raw(
    api: TestClient, body: bytes, *, timestamp: str | bytes, signed: str | bytes
) -> Response:
    """A request with exactly these bytes and headers (bytes headers pass through as-is)."""
    headers: dict[str, str | bytes] = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signed,
    }
    return api.post(PATH, content=body, headers=headers)


def click(
    who: str,
    action_id: str,
    approval_id: str,
    slack: SlackStub,
    name: str,
    *,
    response_url: str | None = None,
) -> dict[str, Any]:
    value = json.dumps({"approval_id": approval_id, "shown": None})
    return {
        "type": "block_actions",
        "user": {"id": SLACK_IDS[who], "username": who},
        "trigger_id": f"trigger-{name}",
        "response_url": slack.response_url(name) if response_url is None else response_url,
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }


def submission(modal: dict[str, Any], reason: Any, who: str = "bob") -> dict[str, Any]:
    """The reject dialog `modal`, submitted with `reason` typed into it."""
    state = {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}}
    return {
        "type": "view_submission",
        "user": {"id": SLACK_IDS[who]},
        "view": {**modal, "state": state},
    }


def reject_dialog(approval_id: str, response_url: str) -> dict[str, Any]:
    """The dialog as the agent opens it (the click that opens it is tested on its own)."""
    return messages.reject_dialog(approval_id=approval_id, shown=None, response_url=response_url)


def decisions(database_url: str, approval_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT actor, action FROM approval_actions WHERE approval_id = %s"
            " AND action IN ('approve', 'reject', 'edit') ORDER BY id",
            (approval_id,),
        ).fetchall()
    return [(actor, action) for actor, action in rows]


def paused(api: TestClient) -> tuple[str, str]:
    started = orchestrate(api, {"request": "restart web on prod"})
    assert started["status"] == "awaiting_approval", started
    return started["workflow_id"], started["approval_id"]
