"""POST /webhook/sentry and /webhook/github through the real app and Postgres (in-memory
executors): signed documented payloads become alert records and workflows; wrong signatures,
stale or replayed deliveries do not; incidents reach a tracker served locally."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, auth, wait_for, wait_status
from tests.integration import inbound_support as s
from tests.testbed.tracker_server import TrackerServer

StartApi = Callable[..., TestClient]
ALERTS = "SELECT * FROM alert_workflows ORDER BY id"


@pytest.fixture
def fakes() -> dict[str, FakeExecutor]:
    return {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}


@pytest.fixture
def start_api(
    database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]
) -> Iterator[StartApi]:
    clients: list[TestClient] = []

    def start(**extra: Any) -> TestClient:
        settings = load_settings(
            DATABASE_URL=database_url,
            AGENT_CONFIG_DIR=CONFIG_DIR,
            AGENT_DATA_DIR=tmp_path,
            AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
            AGENT_SENTRY_CLIENT_SECRET=s.SENTRY_SECRET,
            AGENT_GITHUB_WEBHOOK_SECRET=s.GITHUB_SECRET,
            AGENT_PUBLIC_URL="https://agent.example",
            **extra,
        )
        client = TestClient(create_app(settings, executors=fakes))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def test_a_failed_deploy_starts_a_workflow_and_a_success_resolves_it(
    start_api: StartApi, database_url: str
) -> None:
    api = start_api()
    sent = s.send_github(api, "deployment_status", s.deployment_status("failure"))
    assert sent.status_code == 200, sent.text
    outcome = sent.json()["alerts"]["alerts"][0]
    assert outcome["outcome"] == "workflow_started"
    assert (outcome["target"], outcome["environment"]) == ("web", "prod")
    wait_status(api, outcome["workflow_id"], "completed")
    [row] = s.rows(database_url, ALERTS)
    assert row["source"] == "github" and row["labels"]["repository"] == "Codertocat/Hello-World"
    assert row["links"]["github"].startswith("https://github.com/Codertocat/Hello-World")

    fixed = s.send_github(
        api, "deployment_status", s.deployment_status("success", at="2024-05-01T12:30:00Z")
    )
    assert fixed.json()["alerts"]["resolved"] == 1
    assert s.rows(database_url, ALERTS)[0]["status"] == "resolved"
    green = s.send_github(api, "deployment_status", s.deployment_status("success"))
    assert green.json()["outcome"] == "ignored"  # nothing firing: a success is not an alert


def test_a_sentry_issue_alert_names_its_service_and_resolves(
    start_api: StartApi, database_url: str
) -> None:
    api = start_api()
    sent = s.send_sentry(api, "event_alert", s.sentry_issue_alert())
    assert sent.status_code == 200, sent.text
    outcome = sent.json()["alerts"]["alerts"][0]
    assert outcome["outcome"] == "workflow_started"
    assert (outcome["target"], outcome["environment"]) == ("web", "dev")
    resolved = s.send_sentry(api, "issue", s.sentry_issue("resolved"))
    assert resolved.json()["alerts"]["resolved"] == 1
    [row] = s.rows(database_url, ALERTS)
    assert (row["source"], row["status"], row["alertname"]) == (
        "sentry",
        "resolved",
        "SentryIssueAlert",
    )


def test_metric_alert_and_check_suite_are_recorded(start_api: StartApi, database_url: str) -> None:
    api = start_api()
    metric = s.send_sentry(api, "metric_alert", s.sentry_metric_alert("critical"))
    assert metric.json()["alerts"]["alerts"][0]["outcome"] == "workflow_started"
    suite = s.send_github(api, "check_suite", s.check_suite("failure"))
    assert suite.json()["alerts"]["alerts"][0]["outcome"] == "escalated"
    names = [row["alertname"] for row in s.rows(database_url, ALERTS)]
    assert names == ["SentryMetricAlert", "GitHubCheckSuiteFailed"]


def test_wrong_stale_and_replayed_deliveries_do_nothing(
    start_api: StartApi, database_url: str
) -> None:
    api = start_api()
    wrong = s.send_github(api, "workflow_run", s.workflow_run("failure"), secret="x" * 32)
    assert wrong.status_code == 401 and "X-Hub-Signature-256" in wrong.json()["detail"]
    unsigned = api.post("/webhook/sentry", content=b"{}", headers={"Request-ID": "r1"})
    assert unsigned.status_code == 401
    stale = s.send_sentry(api, "event_alert", s.sentry_issue_alert(), timestamp=1_000_000_000)
    assert stale.status_code == 401 and "stale" in stale.json()["detail"]
    assert s.rows(database_url, ALERTS) == []
    reasons = s.rows(database_url, "SELECT source, reason FROM webhook_rejections ORDER BY id")
    assert [r["source"] for r in reasons] == ["github", "sentry", "sentry"]
    listed = api.get("/webhooks/rejections", headers=auth("carol"))
    assert listed.status_code == 200, listed.text
    assert [r["source"] for r in listed.json()] == ["sentry", "sentry", "github"]  # newest first
    assert "stale" in listed.json()[0]["reason"]
    github = api.get("/webhooks/rejections?source=github", headers=auth("bob")).json()
    assert [r["reason"] for r in github] == [reasons[0]["reason"]]
    assert api.get("/webhooks/rejections", headers=auth("alice")).status_code == 403
    assert api.get("/webhooks/rejections?source=gitlab", headers=auth("bob")).status_code == 422

    first = s.send_github(api, "workflow_run", s.workflow_run("failure"), delivery="d-1")
    again = s.send_github(api, "workflow_run", s.workflow_run("failure"), delivery="d-1")
    assert first.json()["outcome"] == "accepted"
    assert again.json()["outcome"] == "duplicate"
    [row] = s.rows(database_url, ALERTS)
    assert (row["action"], row["received"]) == ("escalated", 1)
    pong = s.send_github(api, "ping", s.ping())
    assert pong.status_code == 200 and pong.json()["outcome"] == "pong"


_MALFORMED = [
    (s.send_github, "workflow_run", "repository", "acme/web", "repository must be an object"),
    (s.send_github, "workflow_run", "repository", ["x"], "repository must be an object"),
    (s.send_github, "workflow_run", "workflow_run", ["x"], "workflow_run must be an object"),
    (s.send_github, "ping", "sender", "x", "sender must be an object"),
    (s.send_github, "check_suite", "check_suite.app", "ci", "check_suite.app must be an object"),
    (s.send_github, "deployment_status", "deployment_status", [1], "deployment_status must be"),
    (s.send_github, "workflow_run", "workflow_run.conclusion", ["failure"], "workflow_run.conc"),
    (s.send_sentry, "event_alert", "data", "x", "data must be an object"),
    (s.send_sentry, "event_alert", "data.event", [1], "data.event must be an object"),
    (s.send_sentry, "event_alert", "installation", "abc", "installation must be an object"),
    (s.send_sentry, "metric_alert", "data.metric_alert.projects", {"a": 1}, "data.metric_alert"),
    (s.send_sentry, "issue", "data.issue.project", "web", "data.issue.project must be an object"),
    # Text Postgres cannot store (NUL, a lone surrogate) or that should not be shown (ESC).
    (s.send_github, "workflow_run", "workflow_run.name", "B\u0000", "workflow_run.name contains"),
    (s.send_github, "workflow_run", "workflow_run.name", "\u001b[31mB", "workflow_run.name"),
    (s.send_github, "workflow_run", "repository.full_name", "a/\ud800", "repository.full_name"),
    (s.send_sentry, "event_alert", "data.event.title", "\u001b[31mx", "data.event.title contains"),
    (s.send_sentry, "event_alert", "data.event.environment", "p\u0000", "data.event.environment"),
]
_DOCUMENTED: dict[str, Callable[[], dict[str, Any]]] = {
    "workflow_run": lambda: s.workflow_run("failure"),
    "ping": lambda: s.changed(s.ping(), "repository", None),  # an organization's hook
    "check_suite": lambda: s.check_suite("failure"),
    "deployment_status": lambda: s.deployment_status("failure"),
    "event_alert": s.sentry_issue_alert,
    "metric_alert": lambda: s.sentry_metric_alert("critical"),
    "issue": lambda: s.sentry_issue("created"),
}


@pytest.mark.parametrize(("send", "event", "path", "value", "detail"), _MALFORMED)
def test_a_wrong_type_or_unstorable_text_is_422_naming_the_field(
    send: Callable[..., Any],
    event: str,
    path: str,
    value: object,
    detail: str,
    start_api: StartApi,
    database_url: str,
) -> None:
    """The sender's fault, so not a 500, nor a 503 it would retry for ever."""
    api = start_api()
    sent = send(api, event, s.changed(_DOCUMENTED[event](), path, value))
    assert sent.status_code == 422, sent.text
    assert sent.json()["detail"].startswith(detail), sent.text
    assert path in sent.json()["detail"]
    assert s.rows(database_url, ALERTS) == []
    assert s.rows(database_url, "SELECT id FROM workflows") == []


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"])
def test_a_time_the_store_cannot_read_back_falls_back_to_now(
    stamp: str, start_api: StartApi, database_url: str
) -> None:
    """As an unreadable time does: the sender's clock is no reason to lose the failure."""
    api = start_api()
    run = s.send_github(api, "workflow_run", s.workflow_run("failure", started=stamp))
    assert run.status_code == 200, run.text
    issue = s.sentry_issue_alert()
    sentry = s.send_sentry(api, "event_alert", s.changed(issue, "data.event.datetime", stamp))
    assert sentry.status_code == 200, sentry.text
    years = {row["starts_at"].year for row in s.rows(database_url, ALERTS)}
    assert years == {datetime.now(UTC).year}


@pytest.mark.parametrize("stamp", ["NaN", "nan", "inf", "-Infinity", "1e999"])
def test_a_sentry_timestamp_that_is_not_a_finite_number_is_401(
    stamp: str, start_api: StartApi, database_url: str
) -> None:
    api = start_api()
    sent = s.send_sentry(api, "event_alert", s.sentry_issue_alert(), timestamp=stamp)
    assert sent.status_code == 401, sent.text
    assert "unreadable Sentry-Hook-Timestamp" in sent.json()["detail"]  # not "stale by infs"
    assert s.rows(database_url, ALERTS) == []
    assert len(s.rows(database_url, "SELECT id FROM webhook_rejections")) == 1


def test_only_resolved_resolves_a_metric_alert(start_api: StartApi, database_url: str) -> None:
    """Any other action is ignored: a resolution would withdraw a pending approval."""
    api = start_api()
    fired = s.send_sentry(api, "metric_alert", s.sentry_metric_alert("critical"))
    workflow_id = fired.json()["alerts"]["alerts"][0]["workflow_id"]
    for action in ("exploded", "", "Resolved"):
        odd = s.send_sentry(api, "metric_alert", s.sentry_metric_alert(action))
        assert odd.status_code == 200, odd.text
        assert (odd.json()["outcome"], odd.json()["alerts"]) == ("ignored", None), odd.text
        assert "not an alert" in odd.json()["reason"]
    [row] = s.rows(database_url, ALERTS)
    assert (row["status"], row["workflow_id"]) == ("firing", workflow_id)
    resolved = s.send_sentry(api, "metric_alert", s.sentry_metric_alert("resolved"))
    assert resolved.json()["alerts"]["resolved"] == 1


def test_a_sender_past_its_rate_is_told_when_to_come_back(start_api: StartApi) -> None:
    api = start_api(AGENT_WEBHOOK_PRINCIPAL_RATE_LIMIT="2/minute")
    codes = [s.send_github(api, "ping", s.ping()).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = s.send_github(api, "ping", s.ping())
    assert int(limited.headers["Retry-After"]) >= 1


def _trackers_file(tmp_path: Path, kind: str, url: str) -> Path:
    specs = {
        "github": f"kind: github\n  repository: acme/ops\n  api_url: {url}\n  token_env: T_TOKEN",
        "linear": (
            f"kind: linear\n  team_id: team-1\n  api_url: {url}/graphql\n  api_key_env: T_TOKEN"
        ),
        "jira": (
            f"kind: jira\n  server: {url}\n  project_key: OPS\n  email: a@example.com\n"
            "  token_env: T_TOKEN"
        ),
    }
    path = tmp_path / f"trackers-{kind}.yml"
    path.write_text(
        "version: 1\ndelivery: {attempts: 2, backoff_s: 0.05, max_backoff_s: 0.1,"
        " retry_after_s: 0.3, poll_s: 0.2, timeout_s: 2}\n"
        f"tracker:\n  {specs[kind]}\n"
    )
    return path


def _outbox(database_url: str) -> list[dict[str, Any]]:
    return s.rows(database_url, "SELECT * FROM tracker_outbox ORDER BY id")


@pytest.mark.parametrize("kind", ["github", "linear", "jira"])
def test_one_issue_per_incident_a_comment_on_change_a_close_on_resolve(
    kind: str,
    start_api: StartApi,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("T_TOKEN", "tracker-token-0123456789")
    with TrackerServer() as tracker:
        api = start_api(AGENT_TRACKERS_FILE=_trackers_file(tmp_path, kind, tracker.url))
        s.send_github(api, "workflow_run", s.workflow_run("failure"))
        s.send_github(
            api, "workflow_run", s.workflow_run("failure", started="2024-05-01T13:00:00Z")
        )
        s.send_github(
            api, "workflow_run", s.workflow_run("success", started="2024-05-01T14:00:00Z")
        )
        wait_for(
            lambda: _outbox(database_url),
            until=lambda rows: len(rows) == 3 and all(r["status"] == "delivered" for r in rows),
            what="three tracker messages delivered",
        )
        [issue] = tracker.issues
        assert "GitHubWorkflowFailed" in issue.title
        assert len(issue.comments) == 2  # the second failure, and the resolution
        assert issue.closed
    [row] = s.rows(database_url, "SELECT state FROM tracker_issues")
    assert row["state"] == "closed"


def test_a_failed_workflow_completes_while_the_tracker_is_down_and_is_retried(
    start_api: StartApi,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fakes: dict[str, FakeExecutor],
) -> None:
    monkeypatch.setenv("T_TOKEN", "tracker-token-0123456789")
    with socket.socket() as probe:  # a port nobody answers on, until the server starts there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    api = start_api(AGENT_TRACKERS_FILE=_trackers_file(tmp_path, "github", url))
    fakes["docker"].target("web").healthy = False
    sent = s.send_github(api, "deployment_status", s.deployment_status("failure"))
    workflow_id = sent.json()["alerts"]["alerts"][0]["workflow_id"]
    wait_status(api, workflow_id, "failed")
    [letter] = wait_for(
        lambda: _outbox(database_url),
        until=lambda rows: len(rows) == 1 and rows[0]["status"] == "dead_letter",
        what="a dead letter",
    )
    assert letter["kind"] == "open" and "unreachable" in letter["last_error"]
    assert letter["attempts"] >= 2
    [shown] = api.get("/trackers/outbox", headers=auth("bob")).json()
    assert (shown["status"], shown["last_error"]) == ("dead_letter", letter["last_error"])
    assert "body" not in shown
    assert api.get("/trackers/outbox", headers=auth("alice")).status_code == 403
    with TrackerServer(port) as tracker:
        wait_for(
            lambda: _outbox(database_url),
            until=lambda rows: rows[0]["status"] == "delivered",
            what="the dead letter delivered once the tracker is back",
        )
        [issue] = tracker.issues
    assert api.get("/trackers/outbox", headers=auth("bob")).json() == []  # nothing left
    assert f"https://agent.example/inbox/workflows/{workflow_id}" in issue.body
    assert "health" in issue.body and "failed" in issue.title
