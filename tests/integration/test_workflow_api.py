"""The approval workflow through the REST API, on real Postgres with in-memory executors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.approvals.listing import ApprovalSummary
from shared.lib.execution.models import ExecutionResult, OperationCall
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, auth, wait_status
from tests.integration.service_support import agent_api


@pytest.fixture
def api(database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]) -> Iterator[TestClient]:
    with agent_api(database_url, tmp_path, executors=fakes, AGENT_SWEEP_INTERVAL_S=0.5) as client:
        yield client


def test_restart_on_prod_waits_for_an_approver_and_runs_once(
    api: TestClient, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    started = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    )
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["status"] == "awaiting_approval"
    assert body["risk"]["tier"] in ("high", "critical")
    approval_id = body["approval_id"]
    docker = fakes["docker"]
    assert docker.target("web").restart_count == 0

    own = api.post(f"/approve/{approval_id}", headers=auth("alice"))
    assert own.status_code == 403
    assert "requested this work" in own.json()["detail"]

    approved = api.post(f"/approve/{approval_id}", headers=auth("bob"), json={"reason": "ok"})
    assert approved.status_code == 202, approved.text
    done = wait_status(api, body["workflow_id"], "completed")
    assert docker.target("web").restart_count == 1
    assert [e["status"] for e in done["executions"]] == ["ok"]
    events = [e["event"] for e in done["timeline"]]
    assert events[:4] == ["received", "planned", "assessed", "approval_requested"]
    assert "executing" in events and events[-1] == "completed"
    actions = [(a["action"], a["actor"]) for a in done["approvals"][0]["actions"]]
    assert actions == [("requested", "alice"), ("approve", "bob")]

    again = api.post(f"/approve/{approval_id}", headers=auth("carol"))
    assert again.status_code == 409
    assert docker.target("web").restart_count == 1


def test_read_only_in_dev_runs_at_once(api: TestClient, fakes: dict[str, FakeExecutor]) -> None:
    started = api.post(
        "/orchestrate",
        json={"operation": "logs", "target": "web", "environment": "dev"},
        headers=auth("alice"),
    )
    assert started.status_code == 201, started.text
    assert started.json()["risk"]["tier"] == "low"
    done = wait_status(api, started.json()["workflow_id"], "completed")
    assert done["approvals"] == []
    assert done["results"][0]["operation"] == "logs"


def test_reject_needs_a_reason_and_stops_the_workflow(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    started = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    )
    approval_id = started.json()["approval_id"]
    no_reason = api.post(f"/reject/{approval_id}", headers=auth("bob"), json={})
    assert no_reason.status_code == 422
    rejected = api.post(
        f"/reject/{approval_id}", headers=auth("bob"), json={"reason": "peak traffic"}
    )
    assert rejected.status_code == 202
    done = wait_status(api, started.json()["workflow_id"], "rejected")
    assert done["error"] == "peak traffic"
    assert fakes["docker"].target("web").restart_count == 0


def test_missing_or_unknown_key_is_401(api: TestClient) -> None:
    assert api.get("/approvals/pending").status_code == 401
    assert api.get("/approvals/pending", headers={"X-API-Key": "nope"}).status_code == 401


class ExplodingHealthExecutor(FakeExecutor):
    """A fake whose `health` raises while `explode` is set: a bug inside the process."""

    explode = False

    async def execute(self, call: OperationCall) -> ExecutionResult:
        if self.explode and call.operation == "health":
            raise RuntimeError("health probe crashed")
        return await super().execute(call)


def test_resume_is_idempotent_and_refuses_an_undecided_approval(api: TestClient) -> None:
    started = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    ).json()
    early = api.post(f"/resume/{started['workflow_id']}", headers=auth("alice"))
    assert early.status_code == 409
    assert "approve or reject it first" in early.json()["detail"]

    api.post(f"/approve/{started['approval_id']}", headers=auth("bob"))
    wait_status(api, started["workflow_id"], "completed")
    again = api.post(f"/resume/{started['workflow_id']}", headers=auth("alice"))
    assert again.status_code == 202
    assert again.json()["outcome"] == "already completed"


def test_resume_continues_a_run_that_failed_inside_the_process(
    database_url: str, tmp_path: Path
) -> None:
    docker = ExplodingHealthExecutor(kind="docker")
    fakes = {"docker": docker, "ssh": FakeExecutor(kind="ssh"), "http": FakeExecutor(kind="http")}
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
    )
    with TestClient(create_app(settings, executors=fakes)) as api:
        started = api.post(
            "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
        ).json()
        docker.explode = True  # verification will crash after the restart ran
        api.post(f"/approve/{started['approval_id']}", headers=auth("bob"))
        failed = wait_status(api, started["workflow_id"], "failed")
        assert "internal error" in failed["error"]
        assert docker.target("web").restart_count == 1

        docker.explode = False
        resumed = api.post(f"/resume/{started['workflow_id']}", headers=auth("alice"))
        assert resumed.status_code == 202
        assert resumed.json()["outcome"] == "resuming"
        done = wait_status(api, started["workflow_id"], "completed")
    assert docker.target("web").restart_count == 1  # the ledger kept the restart from re-running
    assert [e["status"] for e in done["executions"]] == ["ok"]


def test_long_poll_answers_once_the_resumed_run_ends(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    started = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    ).json()
    workflow_id, approval_id = started["workflow_id"], started["approval_id"]
    paused = api.get(f"/workflows/{workflow_id}", params={"wait": 5}, headers=auth("alice"))
    assert paused.status_code == 200
    assert paused.json()["status"] == "awaiting_approval"  # a pause for people ends the wait

    assert api.post(f"/approve/{approval_id}", headers=auth("bob")).status_code == 202
    params: dict[str, str | int] = {"wait": 30, "answered": approval_id}
    done = api.get(f"/workflows/{workflow_id}", params=params, headers=auth("alice")).json()
    assert done["status"] == "completed"  # one request, no polling
    assert fakes["docker"].target("web").restart_count == 1


def test_server_timing_covers_the_wait_of_a_long_poll(api: TestClient) -> None:
    started = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    ).json()
    params: dict[str, str | int] = {"wait": 1, "answered": started["approval_id"]}
    url = f"/workflows/{started['workflow_id']}"
    waited = api.get(url, params=params, headers=auth("alice"))
    assert waited.json()["status"] == "awaiting_approval"  # undecided: the whole second
    name, took = waited.headers["Server-Timing"].split(";dur=")
    assert name == "app" and float(took) >= 1000


def test_long_poll_is_bounded(api: TestClient) -> None:
    response = api.get("/workflows/wf-0000000000000000", params={"wait": 61}, headers=auth("bob"))
    assert response.status_code == 422
    assert "wait" in response.text


def test_pending_approvals_page_by_cursor_with_summaries(api: TestClient) -> None:
    # Three targets: requests to restart one target would merge into one approval (issue 12).
    for request in ("restart web on prod", "restart api on dev", "restart orders-db on prod"):
        started = api.post("/orchestrate", json={"request": request}, headers=auth("alice"))
        assert started.json()["status"] == "awaiting_approval", started.json()
    every = api.get("/approvals/pending", headers=auth("bob"))
    assert every.status_code == 200 and "X-Next-Cursor" not in every.headers
    full = [item["id"] for item in every.json()]
    assert len(full) == 3 and "assessment" in every.json()[0]  # older clients: unchanged

    params: dict[str, str | int] = {"limit": 2, "view": "summary"}
    first = api.get("/approvals/pending", params=params, headers=auth("bob"))
    assert first.status_code == 200
    cursor = first.headers["X-Next-Cursor"]
    assert 'rel="next"' in first.headers["Link"]
    item = first.json()[0]
    assert item["steps"] == ["restart web"] and item["approvals_received"] == 0
    assert ApprovalSummary.model_validate(item).id == UUID(full[0])  # the documented shape
    assert "assessment" not in item and "context" not in item
    rest = api.get("/approvals/pending", params={**params, "after": cursor}, headers=auth("bob"))
    assert "X-Next-Cursor" not in rest.headers
    assert [i["id"] for i in first.json() + rest.json()] == full

    bad = api.get("/approvals/pending", params={"after": "nonsense"}, headers=auth("bob"))
    assert bad.status_code == 422
    assert "'after'" in bad.json()["detail"]


@pytest.mark.parametrize(
    "decoded",
    [
        ["2020-01-01", 1],  # was a 500: 'int' object has no attribute 'replace'
        [1, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"],
        ["2020-01-01T00:00:00+00:00", None],
        ["2020-01-01T00:00:00", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"],  # no offset
        ["2020-01-01T00:00:00+00:00", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", 3],
        {"2020-01-01T00:00:00+00:00": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
    ],
)
def test_a_crafted_cursor_is_422_not_a_server_error(api: TestClient, decoded: object) -> None:
    token = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    for view in ("full", "summary"):
        params = {"after": token, "view": view}
        response = api.get("/approvals/pending", params=params, headers=auth("bob"))
        assert response.status_code == 422, (view, response.text)
        assert "not a cursor this service handed out" in response.json()["detail"]


def test_an_operator_reads_only_the_workflows_they_requested(api: TestClient) -> None:
    body = {"operation": "logs", "target": "web", "environment": "dev"}
    mine = api.post("/orchestrate", json=body, headers=auth("alice")).json()["workflow_id"]
    theirs = api.post("/orchestrate", json=body, headers=auth("bob"))
    assert theirs.status_code == 201, theirs.text
    other = theirs.json()["workflow_id"]

    assert api.get(f"/workflows/{mine}", headers=auth("alice")).status_code == 200
    refused = api.get(f"/workflows/{other}", headers=auth("alice"))
    assert refused.status_code == 403, refused.text
    assert "GET /workflows lists yours" in refused.json()["detail"]
    assert api.get(f"/workflows/{other}?wait=5", headers=auth("alice")).status_code == 403
    assert api.get(f"/workflows/{mine}", headers=auth("erin")).status_code == 200  # approvers


def test_an_operator_reads_only_the_approvals_of_the_work_they_requested(api: TestClient) -> None:
    """The approval route showed anyone's plan and targets, the pending list everyone's, and
    resume told an operator how a workflow of someone else's stood."""
    theirs = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("bob")
    ).json()
    mine = api.post(
        "/orchestrate", json={"request": "restart api on dev"}, headers=auth("alice")
    ).json()
    assert theirs["status"] == mine["status"] == "awaiting_approval", (theirs, mine)

    refused = api.get(f"/approvals/{theirs['approval_id']}", headers=auth("alice"))
    assert refused.status_code == 403, refused.text
    assert api.get(f"/approvals/{mine['approval_id']}", headers=auth("alice")).status_code == 200
    for view in ("full", "summary"):
        listed = api.get("/approvals/pending", params={"view": view}, headers=auth("alice"))
        assert [a["id"] for a in listed.json()] == [mine["approval_id"]], view
    everyone = api.get("/approvals/pending", headers=auth("erin")).json()
    assert {theirs["approval_id"], mine["approval_id"]} <= {a["id"] for a in everyone}
    resumed = api.post(f"/resume/{theirs['workflow_id']}", headers=auth("alice"))
    assert resumed.status_code == 403, resumed.text
