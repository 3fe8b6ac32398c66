"""Sentry and GitHub deliveries shaped like each sender's documented examples (Sentry's
integration-platform docs; GitHub's payloads as octokit/webhooks publishes them), signed the
way each signs, and what they left in the database."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

SENTRY_SECRET = "sentry-client-secret-0123456789abcdef"
GITHUB_SECRET = "github-hook-secret-0123456789abcdef"
REPO = {
    "id": 186853002,
    "name": "Hello-World",
    "full_name": "Codertocat/Hello-World",
    "html_url": "https://github.com/Codertocat/Hello-World",
    "owner": {"login": "Codertocat", "id": 21031067, "type": "User"},
}
SENDER = {"login": "Codertocat", "id": 21031067, "type": "User"}
INSTALLATION = {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"}


def sentry_issue_alert(issue_id: str = "1117540176") -> dict[str, Any]:
    event_id = "e4874d664c3540c1a32eab185f12c5ab"
    return {
        "action": "triggered",
        "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "data": {
            "event": {
                "event_id": event_id,
                "issue_id": issue_id,
                "issue_url": f"https://sentry.io/api/0/issues/{issue_id}/",
                "level": "error",
                "datetime": "2019-08-19T21:06:17.677000Z",
                "culprit": "?(<anonymous>)",
                "project": 1,
                "title": "ReferenceError: heck is not defined",
                "tags": [["level", "error"], ["handled", "no"]],
                "url": f"https://sentry.io/api/0/projects/test-org/front-end/events/{event_id}/",
                "web_url": f"https://sentry.io/organizations/test-org/issues/{issue_id}/events/{event_id}/",
            },
            "triggered_rule": "Very Important Alert Rule!",
            "issue_alert": {"title": "Very Important Alert Rule!", "settings": []},
        },
        "installation": INSTALLATION,
    }


def sentry_issue(action: str, issue_id: str = "1117540176") -> dict[str, Any]:
    return {
        "action": action,
        "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "data": {
            "issue": {
                "id": issue_id,
                "shortId": "FRONT-END-9",
                "title": "ReferenceError: heck is not defined",
                "culprit": "?(runner)",
                "firstSeen": "2019-08-19T20:58:37.391000Z",
                "lastSeen": "2019-08-19T21:06:17.677000Z",
                "level": "error",
                "status": action if action == "resolved" else "unresolved",
                "substatus": "ongoing",
                "project": {"id": "1", "name": "front-end", "platform": "", "slug": "front-end"},
            }
        },
        "installation": INSTALLATION,
    }


def sentry_metric_alert(action: str) -> dict[str, Any]:
    return {
        "action": action,
        "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "data": {
            "description_text": "1000 events in the last 10 minutes\nFilter: level:error",
            "description_title": "Critical: Too many errors",
            "metric_alert": {
                "alert_rule": {
                    "id": "7",
                    "name": "Too many errors",
                    "environment": None,
                    "projects": ["front-end"],
                    "aggregate": "count()",
                },
                "date_started": "2020-09-13T12:26:40.000000Z",
                "date_detected": "2020-09-13T12:26:40.000000Z",
                "date_closed": None,
                "id": "4",
                "identifier": "1",
                "projects": ["front-end"],
                "status": 2,
                "title": "Sacred Marmot",
            },
            "web_url": "https://sentry.io/organizations/baz/alerts/1/",
        },
        "installation": INSTALLATION,
    }


def workflow_run(conclusion: str, *, started: str = "2024-05-01T12:00:00Z") -> dict[str, Any]:
    return {
        "action": "completed",
        "workflow_run": {
            "id": 30433642,
            "name": "Build",
            "head_branch": "main",
            "head_sha": "acb5820ced9479c074f688cc328bf03f341a511d",
            "path": ".github/workflows/build.yml",
            "run_number": 562,
            "run_attempt": 1,
            "event": "push",
            "status": "completed",
            "conclusion": conclusion,
            "workflow_id": 159038,
            "html_url": "https://github.com/Codertocat/Hello-World/actions/runs/30433642",
            "created_at": started,
            "updated_at": started,
            "run_started_at": started,
        },
        "workflow": {"id": 159038, "name": "Build", "path": ".github/workflows/build.yml"},
        "repository": REPO,
        "sender": SENDER,
    }


def deployment_status(state: str, *, at: str = "2024-05-01T12:00:00Z") -> dict[str, Any]:
    return {
        "action": "created",
        "deployment_status": {
            "id": 209916254,
            "state": state,
            "environment": "production",
            "description": "",
            "target_url": "https://github.com/Codertocat/Hello-World/deployments",
            "created_at": at,
            "updated_at": at,
        },
        "deployment": {
            "id": 145988746,
            "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            "ref": "master",
            "task": "deploy",
            "environment": "production",
            "created_at": at,
        },
        "repository": REPO,
        "sender": SENDER,
    }


def check_suite(conclusion: str) -> dict[str, Any]:
    return {
        "action": "completed",
        "check_suite": {
            "id": 118578147,
            "head_branch": "changes",
            "head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            "status": "completed",
            "conclusion": conclusion,
            "app": {"id": 29310, "slug": "octocoders-linter", "name": "Octocoders-linter"},
            "created_at": "2019-05-15T15:20:31Z",
            "updated_at": "2019-05-15T15:20:31Z",
        },
        "repository": REPO,
        "sender": SENDER,
    }


def ping() -> dict[str, Any]:
    return {
        "zen": "Keep it logically awesome.",
        "hook_id": 109948940,
        "hook": {"type": "Repository", "id": 109948940, "events": ["workflow_run"]},
        "repository": REPO,
        "sender": SENDER,
    }


def send_sentry(
    api: TestClient,
    resource: str,
    payload: dict[str, Any],
    *,
    secret: str = SENTRY_SECRET,
    timestamp: float | str | None = None,
    request_id: str | None = None,
) -> Any:
    """A signed delivery; a `timestamp` given as text is sent as it is."""
    body = json.dumps(payload).encode()
    if not isinstance(timestamp, str):
        timestamp = str(int(timestamp if timestamp is not None else time.time()))
    headers = {
        "Content-Type": "application/json",
        "Request-ID": request_id or str(uuid.uuid4()),
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": timestamp,
        "Sentry-Hook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    return api.post("/webhook/sentry", content=body, headers=headers)


def send_github(
    api: TestClient,
    event: str,
    payload: dict[str, Any],
    *,
    secret: str = GITHUB_SECRET,
    delivery: str | None = None,
) -> Any:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "109948940",
        "X-Hub-Signature-256": f"sha256={digest}",
        "User-Agent": "GitHub-Hookshot/044aadd",
    }
    return api.post("/webhook/github", content=body, headers=headers)


def changed(payload: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A copy of `payload` with the field at the dotted `path` set to `value` (None removes it);
    the copy is deep, as payloads share the module's REPO and SENDER."""
    payload = copy.deepcopy(payload)
    *parents, last = path.split(".")
    inner = payload
    for key in parents:
        inner = inner[key]
    if value is None:
        inner.pop(last, None)
    else:
        inner[last] = value
    return payload


def rows(database_url: str, sql: str, *params: object) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
