"""POST /execute-docker-command, the AI Command Gateway's API, on the real test bed: a read-only
intent answers with a real container's output; a restart on prod waits for an approver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import Container
from fastapi.testclient import TestClient

from tests.helpers import auth, wait_for
from tests.integration.service_support import agent_api, point_prod_web_at
from tests.testbed.docker_fixtures import ContainerFactory

PUBLIC_URL = "https://agent.example.test"
GREETING = "gateway-greeting-7f3a"


@pytest.fixture
def prod_web(container_factory: ContainerFactory) -> Container:
    return container_factory("gw-web", command=["sh", "-c", f"echo {GREETING}; sleep 3600"])


@pytest.fixture
def api(
    database_url: str,
    tmp_path: Path,
    prod_web: Container,
    docker_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    point_prod_web_at(monkeypatch, prod_web, docker_url)
    with agent_api(database_url, tmp_path, AGENT_PUBLIC_URL=PUBLIC_URL) as client:
        yield client


def gateway_request(intent: str, **extra: Any) -> dict[str, Any]:
    return {
        "source_id": "monitoring-bot",
        "target_resource": {"name": "web", "environment": "prod"},
        "action_request": {"intent": intent},
        "context": {"ticket": "INC-4711", "reason": "5xx rate above 2%"},
        "priority": "high",
        **extra,
    }


def started_at(container: Container) -> str:
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


def test_a_read_only_intent_answers_with_the_containers_output(api: TestClient) -> None:
    reply = api.post(
        "/execute-docker-command", json=gateway_request("show logs"), headers=auth("alice")
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["overall_status"] == "COMPLETED_SUCCESS", body
    assert body["request_id"] == reply.headers["X-Request-ID"]
    assert (
        body["timestamp_processed_utc"].endswith("Z") or "+00:00" in body["timestamp_processed_utc"]
    )
    assert body["execution_result"]["status"] == "SUCCESS"
    assert GREETING in body["execution_result"]["stdout"]
    assert "/logs" in body["execution_details"]["command"]
    assert body["approval_id"] is None

    workflow = api.get(f"/workflows/{body['workflow_id']}", headers=auth("alice")).json()
    assert workflow["source"] == "gateway"
    assert workflow["request"]["context"]["context"]["ticket"] == "INC-4711"


def test_a_restart_on_prod_is_pending_approval_and_completes_once_approved(
    api: TestClient, prod_web: Container
) -> None:
    before = started_at(prod_web)
    reply = api.post(
        "/execute-docker-command",
        json=gateway_request("restart the container"),
        headers=auth("alice"),
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["overall_status"] == "PENDING_APPROVAL", body
    approval_id = body["approval_id"]
    assert body["approval_url"] == f"{PUBLIC_URL}/inbox/approvals/{approval_id}"
    assert body["execution_result"] is None
    assert "restart web (prod)" in body["execution_details"]["command"]
    assert started_at(prod_web) == before

    approval = api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()
    shown = approval["context"]["request_context"]
    assert shown == {
        "source_id": "monitoring-bot",
        "priority": "HIGH",
        "context": {"ticket": "INC-4711", "reason": "5xx rate above 2%"},
    }

    assert api.post(f"/approve/{approval_id}", headers=auth("bob")).status_code == 202
    done = wait_for(
        lambda: api.get(f"/workflows/{body['workflow_id']}", headers=auth("alice")).json(),
        until=lambda w: w["status"] in ("completed", "failed"),
        what="gateway workflow finished",
    )
    assert done["status"] == "completed", done
    assert started_at(prod_web) != before


def test_bad_input_is_a_422_naming_the_field(api: TestClient) -> None:
    body = gateway_request("show logs", priority="whenever")
    del body["target_resource"]
    reply = api.post("/execute-docker-command", json=body, headers=auth("alice"))
    assert reply.status_code == 422
    fields = {tuple(problem["loc"]) for problem in reply.json()["detail"]}
    assert ("body", "target_resource") in fields
    assert ("body", "priority") in fields
