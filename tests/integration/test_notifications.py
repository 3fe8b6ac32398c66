"""Webhook notifications end to end: the service on real Postgres posting to a real local HTTP
receiver that checks every signature; a failing or absent receiver never holds a workflow up."""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from agent_orchestrator.app import create_app
from shared.lib.approvals.service import ApprovalService
from shared.lib.executors.fake import FakeExecutor
from shared.lib.notifications.formats import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, auth, wait_for
from tests.integration.alerts_support import TOKEN as ALERT_TOKEN
from tests.integration.alerts_support import alert, delivered

PUBLIC_URL = "https://agent.example.test"
StartApi = Callable[[Path], TestClient]
SECRETS = {"/json": "json-receiver-secret-0001", "/slack": "slack-receiver-secret-0002"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body)
        return body


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records every POST and checks its signature; the first
    `fail_first` requests are answered 500."""

    fail_first: int = 0
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                valid = verify_signature(
                    secret=SECRETS.get(self.path, ""),
                    body=body,
                    timestamp=self.headers.get(TIMESTAMP_HEADER),
                    signature=self.headers.get(SIGNATURE_HEADER),
                )
                with receiver._lock:
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1 if failing else 0
                    status = 500 if failing else (200 if valid else 401)
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body, valid, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path and r.answered == 200]

    def events(self, path: str) -> list[str]:
        return [
            r.payload.get("event", r.headers.get("X-Agent-Event", "")) for r in self.accepted(path)
        ]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


def closed_port() -> int:
    """A port nothing listens on: bound for a moment, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def write_config(tmp_path: Path, receivers: list[dict[str, Any]], **delivery: Any) -> Path:
    path = tmp_path / "notifications.yml"
    policy = {"attempts": 4, "backoff_s": 0.05, "max_backoff_s": 0.2, "timeout_s": 2, **delivery}
    document = {"version": 1, "delivery": policy, "receivers": receivers}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def both_formats(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [
        {"name": "ops-json", "url": receiver.url("/json"), "secret": SECRETS["/json"]},
        {
            "name": "ops-slack",
            "url": receiver.url("/slack"),
            "format": "slack",
            "secret": SECRETS["/slack"],
        },
    ]


@pytest.fixture
def start_api(database_url: str, tmp_path: Path) -> Iterator[StartApi]:
    clients: list[TestClient] = []

    def start(notifications_file: Path) -> TestClient:
        settings = load_settings(
            DATABASE_URL=database_url,
            AGENT_CONFIG_DIR=CONFIG_DIR,
            AGENT_DATA_DIR=tmp_path,
            AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
            AGENT_SWEEP_INTERVAL_S=0.5,
            AGENT_NOTIFICATIONS_FILE=notifications_file,
            AGENT_PUBLIC_URL=PUBLIC_URL,
        )
        fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
        client = TestClient(create_app(settings, executors=fakes))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def wait_status(api: TestClient, workflow_id: str, status: str) -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        body: dict[str, Any] = api.get(f"/workflows/{workflow_id}", headers=auth("bob")).json()
        return body

    return wait_for(probe, until=lambda w: w["status"] == status, what=f"{workflow_id} {status}")


def wait_events(receiver: WebhookReceiver, path: str, expected: list[str]) -> list[Received]:
    wait_for(
        lambda: receiver.events(path),
        until=lambda events: all(event in events for event in expected),
        timeout_s=15,
        what=f"{expected} at {path}",
    )
    return receiver.accepted(path)


def counted(channel: str, event: str, status: str) -> float:
    labels = {"channel": channel, "event": event, "status": status}
    return REGISTRY.get_sample_value("orchestrator_notifications_total", labels) or 0.0


def pause_for_approval(api: TestClient) -> tuple[str, str]:
    started = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    )
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "awaiting_approval"
    return started.json()["workflow_id"], started.json()["approval_id"]


def test_approved_workflow_notifies_both_formats_signed(
    start_api: StartApi, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    api = start_api(write_config(tmp_path, both_formats(receiver)))
    workflow_id, approval_id = pause_for_approval(api)
    approved = api.post(f"/approve/{approval_id}", headers=auth("bob"), json={"reason": "ok"})
    assert approved.status_code == 202, approved.text
    wait_status(api, workflow_id, "completed")

    expected = ["approval_requested", "approval_decided", "workflow_finished"]
    generic = {r.payload["event"]: r.payload for r in wait_events(receiver, "/json", expected)}
    requested = generic["approval_requested"]
    assert requested["approval_id"] == approval_id
    assert requested["workflow_id"] == workflow_id
    assert requested["tier"] in ("high", "critical")
    assert requested["plan_summary"] == "restart web (prod)"
    assert requested["approval_url"] == f"{PUBLIC_URL}/inbox/approvals/{approval_id}"
    assert requested["workflow_url"] == f"{PUBLIC_URL}/inbox/workflows/{workflow_id}"
    decided = generic["approval_decided"]
    assert (decided["decision"], decided["actor"], decided["reason"]) == ("approve", "bob", "ok")
    assert generic["workflow_finished"]["workflow_status"] == "completed"
    assert generic["workflow_finished"]["approval_id"] == approval_id

    slack = wait_events(receiver, "/slack", expected)
    for message in slack:
        assert set(message.payload) == {"text", "blocks"}
        assert f"{PUBLIC_URL}/inbox/approvals/{approval_id}" in message.payload["text"]
        assert "restart web (prod)" in json.dumps(message.payload["blocks"])
    assert {r.headers["X-Agent-Event"] for r in slack} == set(expected)
    assert all(r.signature_valid for r in receiver.requests)


def test_rejected_workflow_notifies_decision_and_end(
    start_api: StartApi, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    api = start_api(write_config(tmp_path, both_formats(receiver)[:1]))
    workflow_id, approval_id = pause_for_approval(api)
    api.post(f"/reject/{approval_id}", headers=auth("bob"), json={"reason": "peak traffic"})
    wait_status(api, workflow_id, "rejected")
    expected = ["approval_requested", "approval_decided", "workflow_finished"]
    generic = {r.payload["event"]: r.payload for r in wait_events(receiver, "/json", expected)}
    assert generic["approval_decided"]["decision"] == "reject"
    assert generic["approval_decided"]["title"] == "Approval rejected by bob"
    assert generic["workflow_finished"]["workflow_status"] == "rejected"
    assert generic["workflow_finished"]["error"] == "peak traffic"


def test_expired_approval_notifies(
    start_api: StartApi, receiver: WebhookReceiver, tmp_path: Path, database_url: str
) -> None:
    api = start_api(write_config(tmp_path, both_formats(receiver)[:1]))
    workflow_id, approval_id = pause_for_approval(api)
    with psycopg.connect(database_url, autocommit=True) as conn:
        past = datetime.now(UTC) - timedelta(minutes=1)
        conn.execute(
            "UPDATE approval_requests SET expires_at = %s WHERE id = %s", (past, approval_id)
        )
    wait_status(api, workflow_id, "expired")
    expected = ["approval_expired", "workflow_finished"]
    generic = {r.payload["event"]: r.payload for r in wait_events(receiver, "/json", expected)}
    assert generic["approval_expired"]["approval_id"] == approval_id
    assert generic["approval_expired"]["actor"] == "expiry-sweeper"
    assert generic["workflow_finished"]["workflow_status"] == "expired"


def test_withdrawn_approval_notifies(
    start_api: StartApi, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    api = start_api(write_config(tmp_path, both_formats(receiver)[:1]))
    workflow_id, approval_id = pause_for_approval(api)
    decisions: ApprovalService = api.app.state.decisions  # type: ignore[attr-defined]
    assert api.portal is not None
    withdraw = partial(decisions.withdraw, actor="alertmanager", reason="resolved")
    withdrawn = api.portal.call(withdraw, uuid.UUID(approval_id))
    assert withdrawn
    wait_status(api, workflow_id, "withdrawn")
    expected = ["approval_withdrawn", "workflow_finished"]
    generic = {r.payload["event"]: r.payload for r in wait_events(receiver, "/json", expected)}
    assert generic["approval_withdrawn"]["actor"] == "alertmanager"
    assert generic["approval_withdrawn"]["reason"] == "resolved"
    assert generic["workflow_finished"]["workflow_status"] == "withdrawn"


def test_receiver_failing_twice_gets_the_third_attempt(
    start_api: StartApi, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.fail_first = 2
    entry = {**both_formats(receiver)[0], "name": "flaky", "events": ["workflow_finished"]}
    retried_before = counted("flaky", "workflow_finished", "retried")
    api = start_api(write_config(tmp_path, [entry]))
    started = api.post(
        "/orchestrate",
        json={"operation": "logs", "target": "web", "environment": "dev"},
        headers=auth("alice"),
    )
    wait_status(api, started.json()["workflow_id"], "completed")
    delivered = wait_events(receiver, "/json", ["workflow_finished"])
    assert len(delivered) == 1
    attempts = [
        r
        for r in receiver.requests
        if r.headers[DELIVERY_HEADER] == str(delivered[0].payload["id"])
    ]
    assert [r.answered for r in attempts] == [500, 500, 200]
    assert all(r.signature_valid for r in attempts)
    assert counted("flaky", "workflow_finished", "retried") - retried_before == 2


def test_receiver_down_never_holds_the_workflow(
    start_api: StartApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.lib.notifications")
    entry = {
        "name": "down",
        "url": f"http://127.0.0.1:{closed_port()}/hook",
        "secret": SECRETS["/json"],
    }
    failed_before = counted("down", "workflow_finished", "failed")
    api = start_api(write_config(tmp_path, [entry], attempts=2))
    started = api.post(
        "/orchestrate",
        json={"operation": "logs", "target": "web", "environment": "dev"},
        headers=auth("alice"),
    )
    assert started.status_code == 201, started.text
    workflow_id = started.json()["workflow_id"]
    wait_status(api, workflow_id, "completed")
    wait_for(
        lambda: counted("down", "workflow_finished", "failed"),
        until=lambda value: value == failed_before + 1,
        what="a counted failed delivery",
    )
    failures = [
        r
        for r in caplog.records
        if r.getMessage() == "notification delivery failed" and r.__dict__["receiver"] == "down"
    ]
    assert failures, [r.getMessage() for r in caplog.records]
    assert failures[0].__dict__["workflow_id"] == workflow_id
    assert failures[0].__dict__["attempts"] == 2
    assert "ConnectError" in failures[0].__dict__["error"]


def test_an_alert_about_the_agent_notifies_escalated_with_reason_and_evidence(
    receiver: WebhookReceiver, tmp_path: Path, database_url: str
) -> None:
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_NOTIFICATIONS_FILE=write_config(tmp_path, both_formats(receiver)),
        AGENT_PUBLIC_URL=PUBLIC_URL,
        AGENT_ALERT_WEBHOOK_TOKEN=ALERT_TOKEN,
    )
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    with TestClient(create_app(settings, executors=fakes)) as api:
        own = alert(alertname="InstanceDown", job="devops-agent", env="dev", service="web")
        reply = delivered(api, own)
        assert reply["escalated"] == 1
        escalations = wait_events(receiver, "/json", ["escalated"])
    payload = next(r.payload for r in escalations if r.payload["event"] == "escalated")
    assert "about the agent itself" in payload["reason"]
    assert payload["evidence"]["alertname"] == "InstanceDown"
    assert payload["evidence"]["labels"]["job"] == "devops-agent"
    assert payload["workflow_id"] is None
    assert payload["inbox_url"] == f"{PUBLIC_URL}/inbox/pending"
    slack = wait_events(receiver, "/slack", ["escalated"])
    assert "InstanceDown" in json.dumps(slack[0].payload["blocks"])
    assert fakes["docker"].calls == []


def _alert_api(receiver: WebhookReceiver, tmp_path: Path, database_url: str) -> TestClient:
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_NOTIFICATIONS_FILE=write_config(tmp_path, both_formats(receiver)[:1]),
        AGENT_PUBLIC_URL=PUBLIC_URL,
        AGENT_ALERT_WEBHOOK_TOKEN=ALERT_TOKEN,
    )
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    return TestClient(create_app(settings, executors=fakes))


def test_an_unknown_alert_about_a_configured_target_is_investigated_then_escalated(
    receiver: WebhookReceiver, tmp_path: Path, database_url: str
) -> None:
    with _alert_api(receiver, tmp_path, database_url) as api:
        unknown = alert(alertname="PaymentsLatencyOdd", service="web", env="prod")
        reply = delivered(api, unknown)
        [outcome] = reply["alerts"]
        assert outcome["outcome"] == "workflow_started", outcome
        assert outcome["strategy"] == "investigate-unmatched"
        done = wait_status(api, outcome["workflow_id"], "completed")
        escalations = wait_events(receiver, "/json", ["escalated"])
    assert [step["operation"] for step in done["plan"]] == ["health", "logs"]
    assert {e["operation"] for e in done["executions"]} == {"health", "logs"}
    payload = next(r.payload for r in escalations if r.payload["event"] == "escalated")
    assert "PaymentsLatencyOdd" in payload["reason"]
    evidence = payload["evidence"]
    assert (evidence["target"], evidence["environment"]) == ("web", "prod")
    assert evidence["workflow_id"] == outcome["workflow_id"]
    assert [f["operation"] for f in evidence["findings"]] == ["health", "logs"]


def test_an_unknown_alert_about_nothing_configured_is_escalated_at_once(
    receiver: WebhookReceiver, tmp_path: Path, database_url: str
) -> None:
    with _alert_api(receiver, tmp_path, database_url) as api:
        stray = alert(alertname="DiskFillingUp", service="billing-batch", env="prod")
        reply = delivered(api, stray)
        [outcome] = reply["alerts"]
        assert outcome["outcome"] == "escalated", outcome
        assert outcome["workflow_id"] is None
        escalations = wait_events(receiver, "/json", ["escalated"])
    payload = next(r.payload for r in escalations if r.payload["event"] == "escalated")
    assert "DiskFillingUp" in payload["reason"]
    assert "no configured target" in payload["reason"]
    assert payload["evidence"]["labels"]["service"] == "billing-batch"
