"""POST /webhook/alerts through the real app and Postgres, with in-memory executors: who may
deliver, one workflow per alert, escalation instead of acting on itself, withdrawal on resolve."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from agent_orchestrator.app import create_app
from shared.lib.alerts import AlertNotice, AlertStore, RecoveryDecision
from shared.lib.db.pool import open_pool
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from shared.lib.workflows.store import WorkflowStore
from tests.helpers import CONFIG_DIR, FIXTURES, auth, wait_status, workflow
from tests.integration.alerts_support import (
    TOKEN,
    alert,
    alert_rows,
    deliver,
    delivered,
    notification,
    restarts,
    workflows_for,
)
from tests.unit.test_alert_injection import CORPUS, SELF_DATABASE, SELF_HOST, Case
from tests.unit.test_alert_injection import payload as injection_payload

SECRET = "test-alert-hmac-secret-0123456789"
# The agent's own container in these tests: the fixtures' dev/api service runs in it.
SELF_CONTAINER = "dev-api"

StartApi = Callable[..., TestClient]


@pytest.fixture
def fakes() -> dict[str, FakeExecutor]:
    executors = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    executors["docker"].target("web").running = False  # down, as the alerts about it say
    return executors


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A database of each test's own: flap counting reads the execution history."""
    return empty_database_url


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
            AGENT_SWEEP_INTERVAL_S=0.5,
            AGENT_SELF_CONTAINERS=SELF_CONTAINER,
            **extra,
        )
        client = TestClient(create_app(settings, executors=fakes))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(start_api: StartApi) -> TestClient:
    return start_api(AGENT_ALERT_WEBHOOK_TOKEN=TOKEN)


# --- who may deliver -------------------------------------------------------------------------


def test_without_a_token_configured_the_webhook_refuses_everything(
    start_api: StartApi, database_url: str
) -> None:
    api = start_api()
    fired = alert(service="web", env="dev")
    for token in (None, "anything", TOKEN):
        response = deliver(api, fired, token=token)
        assert response.status_code == 503, response.text
        assert "AGENT_ALERT_WEBHOOK_TOKEN" in response.json()["detail"]
    assert alert_rows(database_url, fired["fingerprint"]) == []


def test_a_missing_or_wrong_bearer_token_is_401(api: TestClient, database_url: str) -> None:
    fired = alert(service="web", env="dev")
    assert deliver(api, fired, token=None).status_code == 401
    assert deliver(api, fired, token="wrong-token-0123456789").status_code == 401
    assert deliver(api, fired, token=TOKEN[:-1]).status_code == 401
    basic = deliver(api, fired, token=None, Authorization=f"Basic {TOKEN}")
    assert basic.status_code == 401
    assert "Bearer" in basic.json()["detail"]
    # A principal's API key is not the webhook's token.
    assert deliver(api, fired, token="demo-admin-key").status_code == 401
    # Authentication comes before parsing: a stranger learns nothing about the payload format.
    garbage = api.post("/webhook/alerts", content=b"{not json", headers={"Authorization": "x"})
    assert garbage.status_code == 401
    assert alert_rows(database_url, fired["fingerprint"]) == []


def test_with_a_secret_set_the_body_must_be_signed(start_api: StartApi, database_url: str) -> None:
    api = start_api(AGENT_ALERT_WEBHOOK_TOKEN=TOKEN, AGENT_ALERT_WEBHOOK_SECRET=SECRET)
    fired = alert(alertname="NothingMatches", service="web", env="dev")
    body = json.dumps(notification(fired)).encode()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    other = "sha256=" + hmac.new(SECRET.encode(), body + b" ", hashlib.sha256).hexdigest()
    wrong_key = "sha256=" + hmac.new(b"another-secret-000000", body, hashlib.sha256).hexdigest()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(**extra: str) -> Any:
        return api.post("/webhook/alerts", content=body, headers={**headers, **extra})

    unsigned = post()
    assert unsigned.status_code == 401
    assert "X-Signature-256" in unsigned.json()["detail"]
    for signature in (other, wrong_key, good.removeprefix("sha256="), "sha256="):
        assert post(**{"X-Signature-256": signature}).status_code == 401, signature
    assert alert_rows(database_url, fired["fingerprint"]) == []
    signed = post(**{"X-Signature-256": good})
    assert signed.status_code == 200, signed.text
    # The token is still needed with a valid signature.
    no_token = api.post(
        "/webhook/alerts",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature-256": good},
    )
    assert no_token.status_code == 401


def test_a_malformed_notification_is_422_and_a_malformed_alert_refused_alone(
    api: TestClient,
) -> None:
    bad_version = {**notification(alert(service="web", env="dev")), "version": "3"}
    response = api.post(
        "/webhook/alerts", json=bad_version, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 422
    no_fingerprint = notification({**alert(), "fingerprint": "bad fingerprint!"})
    response = api.post(
        "/webhook/alerts", json=no_fingerprint, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200, response.text
    (refused,) = response.json()["alerts"]
    assert refused["outcome"] == "refused" and "fingerprint" in refused["reason"]


@pytest.mark.parametrize(
    ("field", "stamp"),
    [
        ("startsAt", "9999-12-31T23:59:59-23:59"),
        ("startsAt", "0001-01-01T00:00:00+14:00"),
        ("endsAt", "9999-12-31T23:59:59-23:59"),
    ],
)
def test_a_time_the_store_cannot_read_back_is_refused_alone(
    field: str, stamp: str, api: TestClient, database_url: str
) -> None:
    """Postgres would store it but psycopg not read it back: a 503 Alertmanager retries for ever."""
    bad = {**alert("resolved" if field == "endsAt" else "firing", service="web"), field: stamp}
    good = alert(alertname="NothingMatches", service="web", env="dev")
    refused, handled = delivered(api, bad, good)["alerts"]
    assert refused["outcome"] == "refused" and f"{field}: " in refused["reason"], refused
    assert handled["outcome"] != "refused"
    assert alert_rows(database_url, bad["fingerprint"]) == []
    assert workflows_for(database_url, bad["fingerprint"]) == []


# --- one workflow per alert ------------------------------------------------------------------


def test_a_firing_alert_starts_one_recovery_workflow_and_repeats_are_counted(
    api: TestClient, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    fired = alert(service="web", env="dev", job="web", instance="10.1.2.3:8080")
    first = delivered(api, fired)
    assert (first["received"], first["started"], first["duplicates"]) == (1, 1, 0)
    outcome = first["alerts"][0]
    assert outcome["outcome"] == "workflow_started"
    assert (outcome["strategy"], outcome["environment"], outcome["target"]) == (
        "service-down",
        "dev",
        "web",
    )
    assert outcome["workflow_status"] == "awaiting_approval"
    workflow_id = outcome["workflow_id"]
    started = workflow(api, workflow_id)
    assert started["source"] == "alert"
    assert started["requester"] == "alertmanager"
    assert [
        (s["operation"], s["target"], s["environment"], s["params"]) for s in started["plan"]
    ] == [
        ("logs", "web", "dev", {"tail": 50}),
        ("health", "web", "dev", {}),
        ("restart", "web", "dev", {"timeout": 10}),
        ("health", "web", "dev", {}),
    ]
    assert started["plan"][2]["when"] == {"step": 1, "status": "failed"}
    assert started["risk"]["tier"] == "medium"  # dev-mutation, from the risk policy
    assert started["request"]["alert"]["fingerprint"] == fired["fingerprint"]
    assert "annotations" not in started["request"]["alert"]  # free text never reaches a plan

    again = delivered(api, fired)
    assert again["duplicates"] == 1 and again["started"] == 0
    assert again["alerts"][0]["workflow_id"] == workflow_id
    assert again["alerts"][0]["received"] == 2
    # A new episode while this workflow still waits is counted on it, not started anew.
    later = alert(
        service="web",
        env="dev",
        fingerprint=fired["fingerprint"],
        starts_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    )
    third = delivered(api, later)
    assert third["alerts"][0]["outcome"] == "duplicate"
    assert workflows_for(database_url, fired["fingerprint"]) == [workflow_id]
    rows = alert_rows(database_url, fired["fingerprint"])
    assert len(rows) == 1
    row = rows[0]
    assert (row["status"], row["action"], row["received"]) == ("firing", "workflow", 3)
    assert row["workflow_id"] == workflow_id
    assert str(row["approval_id"]) == started["approval_id"]
    assert row["last_seen"] > row["first_seen"]
    assert any("still active" in note["note"] for note in row["notes"])
    assert restarts(fakes) == []  # nothing runs before a human approves


def test_concurrent_deliveries_of_one_alert_start_one_workflow(
    api: TestClient, database_url: str
) -> None:
    fired = alert(service="web", env="dev")
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda _: delivered(api, fired), range(6)))
    outcomes = sorted(reply["alerts"][0]["outcome"] for reply in replies)
    assert outcomes == ["duplicate"] * 5 + ["workflow_started"]
    assert len(workflows_for(database_url, fired["fingerprint"])) == 1
    assert alert_rows(database_url, fired["fingerprint"])[0]["received"] == 6


def test_a_new_episode_after_the_workflow_finished_starts_a_new_one(
    api: TestClient, database_url: str
) -> None:
    fired = alert(service="web", env="dev")
    first = delivered(api, fired)["alerts"][0]
    approval_id = workflow(api, first["workflow_id"])["approval_id"]
    assert api.post(f"/approve/{approval_id}", headers=auth("bob")).status_code == 202
    wait_status(api, first["workflow_id"], "completed")
    again = alert(
        service="web",
        env="dev",
        fingerprint=fired["fingerprint"],
        starts_at=datetime(2024, 5, 2, 9, 0, tzinfo=UTC),
    )
    second = delivered(api, again)["alerts"][0]
    assert second["outcome"] == "workflow_started"
    assert second["workflow_id"] != first["workflow_id"]
    # The first episode, redelivered late, is still only counted.
    assert delivered(api, fired)["alerts"][0]["outcome"] == "duplicate"
    assert len(workflows_for(database_url, fired["fingerprint"])) == 2


# --- resolution ------------------------------------------------------------------------------


def test_resolution_withdraws_a_pending_approval_and_a_late_approve_is_409(
    api: TestClient, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    fired = alert(service="web", env="dev")
    workflow_id = delivered(api, fired)["alerts"][0]["workflow_id"]
    approval_id = workflow(api, workflow_id)["approval_id"]

    resolved = delivered(api, alert("resolved", fingerprint=fired["fingerprint"], service="web"))
    assert (resolved["resolved"], resolved["withdrawn"]) == (1, 1)
    outcome = resolved["alerts"][0]
    assert outcome["outcome"] == "withdrawn"
    assert outcome["workflow_id"] == workflow_id

    done = wait_status(api, workflow_id, "withdrawn")
    assert "resolved before anyone decided" in done["error"]
    record = api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()
    assert record["status"] == "withdrawn"
    assert [(a["action"], a["actor"]) for a in record["actions"]] == [
        ("requested", "alertmanager"),
        ("withdraw", "alertmanager"),
    ]
    late = api.post(f"/approve/{approval_id}", headers=auth("bob"))
    assert late.status_code == 409, late.text
    assert restarts(fakes) == []

    row = alert_rows(database_url, fired["fingerprint"])[0]
    assert row["status"] == "resolved"
    assert row["resolved_at"] == datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
    assert any("withdrawn" in note["note"] for note in row["notes"])
    repeat = delivered(api, alert("resolved", fingerprint=fired["fingerprint"], service="web"))
    assert repeat["alerts"][0]["outcome"] == "duplicate"


def test_resolution_after_the_workflow_ran_is_only_recorded(
    api: TestClient, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    fired = alert(service="web", env="prod")
    started = delivered(api, fired)["alerts"][0]
    detail = workflow(api, started["workflow_id"])
    assert detail["risk"]["tier"] == "high"  # customer-facing production, from the policy
    assert api.post(f"/approve/{detail['approval_id']}", headers=auth("bob")).status_code == 202
    wait_status(api, started["workflow_id"], "completed")
    assert restarts(fakes) == [("prod", "web")]

    resolved = delivered(api, alert("resolved", fingerprint=fired["fingerprint"]))
    outcome = resolved["alerts"][0]
    assert outcome["outcome"] == "resolved"
    assert "already ended completed" in outcome["reason"]
    assert workflow(api, started["workflow_id"])["status"] == "completed"
    assert alert_rows(database_url, fired["fingerprint"])[0]["status"] == "resolved"


def test_a_resolution_never_seen_firing_is_recorded(api: TestClient, database_url: str) -> None:
    gone = alert("resolved", service="web", env="dev")
    outcome = delivered(api, gone)["alerts"][0]
    assert outcome["outcome"] == "resolved"
    assert "before the agent saw it firing" in outcome["reason"]
    assert workflows_for(database_url, gone["fingerprint"]) == []


# --- never on itself; only what is configured --------------------------------------------------


def test_an_alert_about_the_agent_is_escalated_not_acted_on(
    api: TestClient, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    by_label = alert(alertname="InstanceDown", job="devops-agent", env="dev", service="web")
    own_container = alert(service="api", env="dev")  # dev/api runs in SELF_CONTAINER
    reply = delivered(api, by_label, own_container)
    assert (reply["escalated"], reply["started"]) == (2, 0)
    label_outcome, container_outcome = reply["alerts"]
    assert label_outcome["outcome"] == "escalated"
    assert "about the agent itself" in label_outcome["reason"]
    assert "job='devops-agent'" in label_outcome["reason"]
    assert container_outcome["outcome"] == "escalated"
    assert "the agent's own container" in container_outcome["reason"]
    assert (container_outcome["environment"], container_outcome["target"]) == ("dev", "api")
    for fired in (by_label, own_container):
        assert workflows_for(database_url, fired["fingerprint"]) == []
        row = alert_rows(database_url, fired["fingerprint"])[0]
        assert (row["action"], row["workflow_id"]) == ("escalated", None)
    assert fakes["docker"].calls == []


def test_an_alert_naming_an_unknown_target_starts_nothing(
    api: TestClient, database_url: str
) -> None:
    unknown = alert(service="web2", env="dev")
    no_env = alert(service="web")  # web exists in dev and prod
    reply = delivered(api, unknown, no_env)
    assert (reply["ignored"], reply["started"]) == (2, 0)
    reasons = [outcome["reason"] for outcome in reply["alerts"]]
    assert "unknown target 'web2'" in reasons[0]
    assert "several environments" in reasons[1]
    for fired in (unknown, no_env):
        assert workflows_for(database_url, fired["fingerprint"]) == []
        row = alert_rows(database_url, fired["fingerprint"])[0]
        assert (row["action"], row["status"]) == ("ignored", "firing")


def test_an_alert_no_strategy_covers_is_investigated_read_only(
    api: TestClient, database_url: str
) -> None:
    """Issue 10: not dropped; the target its labels name is read (never changed)."""
    unmatched = alert(alertname="DiskAlmostFull", service="web", env="dev")
    [outcome] = delivered(api, unmatched)["alerts"]
    assert outcome["outcome"] == "workflow_started", outcome
    started = workflow(api, outcome["workflow_id"])
    assert [(s["operation"], s["target"]) for s in started["plan"]] == [
        ("health", "web"),
        ("logs", "web"),
    ]
    row = alert_rows(database_url, unmatched["fingerprint"])[0]
    assert (row["action"], row["strategy"]) == ("workflow", "investigate-unmatched")
    assert "no strategy matches 'DiskAlmostFull'" in row["reason"]


def test_alerts_are_listed_for_principals(api: TestClient) -> None:
    fired = alert(service="web2", env="dev")
    delivered(api, fired)
    assert api.get("/alerts").status_code == 401
    listed = api.get("/alerts", params={"status": "firing"}, headers=auth("alice"))
    assert listed.status_code == 200
    mine = [a for a in listed.json() if a["fingerprint"] == fired["fingerprint"]]
    assert [(a["alertname"], a["action"], a["received"]) for a in mine] == [
        ("ServiceDown", "ignored", 1)
    ]
    assert "annotations" not in mine[0]


def own_database_endpoint(database_url: str) -> str:
    """Where the agent's database answers, as an alert would name it: `host:port` for a server,
    `socket-directory:port` for the embedded one (it listens on a Unix socket only)."""
    params = conninfo_to_dict(database_url)
    return f"{params['host']}:{params.get('port') or 5432}"


def corpus_for(database_url: str) -> tuple[Case, ...]:
    """The corpus with its alert about the agent's database naming this run's database."""
    endpoint = own_database_endpoint(database_url)
    cases = tuple(
        replace(case, labels={**case.labels, "instance": endpoint})
        if case.labels.get("instance") == SELF_DATABASE
        else case
        for case in CORPUS
    )
    assert sum(case.labels.get("instance") == endpoint for case in cases) == 1, endpoint
    return cases


@pytest.mark.db_location
def test_the_injection_corpus_through_the_webhook(
    start_api: StartApi, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    corpus = corpus_for(database_url)
    for case in corpus:  # every service an alert names is down, as the alert says
        if case.target is not None:
            fakes["docker"].target(case.target).running = False
            fakes["ssh"].target(case.target).running = False
    api = start_api(AGENT_ALERT_WEBHOOK_TOKEN=TOKEN, AGENT_SELF_HOSTS=SELF_HOST)
    response = api.post(
        "/webhook/alerts",
        json=injection_payload(corpus),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200, response.text
    outcomes = response.json()["alerts"]
    assert len(outcomes) == len(corpus)
    asking: dict[tuple[str | None, str | None], list[str]] = {}
    for case, outcome in zip(corpus, outcomes, strict=True):
        expected = "workflow_started" if case.action == "workflow" else case.action
        assert outcome["outcome"] == expected, (case.name, outcome)
        if case.action != "workflow":
            assert outcome["workflow_id"] is None, case.name
            assert case.reason is not None and case.reason in outcome["reason"], outcome
            continue
        started = workflow(api, outcome["workflow_id"])
        assert [(s["operation"], s["environment"], s["target"]) for s in started["plan"]] == [
            ("logs", case.environment, case.target),
            ("health", case.environment, case.target),
            ("restart", case.environment, case.target),
            ("health", case.environment, case.target),
        ], case.name
        assert started["risk"]["tier"] == case.tier, case.name
        # One owner per target: a second recovery of the same target merges into the first.
        assert started["status"] in ("awaiting_approval", "merged"), case.name
        asking.setdefault((case.environment, case.target), []).append(started["status"])
    assert all(s.count("awaiting_approval") == 1 for s in asking.values()), asking
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM workflows").fetchone()
    assert count == (sum(case.action == "workflow" for case in corpus),)
    assert restarts(fakes) == []


def test_a_resolution_overtaking_the_start_is_seen_when_the_workflow_is_attached(
    api: TestClient, database_url: str
) -> None:
    """The firing side attaches its workflow after the start; if the resolution came first,
    the attach answers `resolved` and the service withdraws the new approval then."""
    fired = alert(service="web", env="dev")
    notice = AlertNotice(
        fingerprint=fired["fingerprint"],
        alertname="ServiceDown",
        labels=fired["labels"],
        annotations={},
        starts_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    decision = RecoveryDecision(action="workflow", strategy="service-down")

    async def race() -> tuple[bool, bool, str]:
        pool = await open_pool(database_url, max_size=2)
        try:
            store = AlertStore(pool)
            claimed = await store.record_firing(notice, decision)
            resolved = await store.record_resolved(notice)
            workflow_id = f"wf-race-{uuid.uuid4().hex[:8]}"
            await WorkflowStore(pool).create(
                workflow_id=workflow_id,
                source="alert",
                requester="alertmanager",
                request={},
                request_id=None,
            )
            attached = await store.attach_workflow(
                claimed.record.id, workflow_id=workflow_id, approval_id=None, note="started"
            )
            return claimed.fresh, resolved.fresh, attached.status
        finally:
            await pool.close()

    assert asyncio.run(race()) == (True, True, "resolved")
