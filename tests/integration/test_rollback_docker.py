"""The rollback gate on the real thing: Postgres, the Docker Engine and a real container.

prod/web is one httpd container behind a front door (the service's `verify_url`): a loopback
server that answers 200 while the container serves and 503 otherwise, as a load balancer with
one replica would. Stopping web therefore "fails verification": the workflow does not just end,
it asks for a rollback with `start` pre-filled, and approving it starts the container again.
"""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from docker.models.containers import Container
from fastapi.testclient import TestClient

from tests.helpers import auth, wait_for
from tests.integration.service_support import agent_api
from tests.testbed.docker_fixtures import ContainerFactory, http_url
from tests.testbed.loopback_server import LoopbackServer

APPROVERS = ("carol", "dave")  # enough for any tier: an ops lead and an admin


def serving(container: Container) -> bool:
    container.reload()
    if container.status != "running":
        return False
    try:
        return httpx.get(http_url(container), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def front_door(container: Container) -> type[BaseHTTPRequestHandler]:
    class FrontDoor(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 200 if serving(container) else 503
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    return FrontDoor


@pytest.fixture
def prod_web(container_factory: ContainerFactory) -> Container:
    return container_factory("prod-web", http=True)


@pytest.fixture
def live_api(
    database_url: str, tmp_path: Path, prod_web: Container, docker_url: str
) -> Iterator[TestClient]:
    with LoopbackServer(front_door(prod_web), name="front-door") as door:
        environments = tmp_path / "environments.yml"
        environments.write_text(
            "version: 1\n"
            "environments:\n"
            "  prod:\n"
            f"    docker_hosts: {{local: '{docker_url}'}}\n"
            "    services:\n"
            "      web:\n"
            "        kind: docker\n"
            "        docker_host: local\n"
            f"        container: {prod_web.name}\n"
            f"        verify_url: {door.url}/\n"
        )
        with agent_api(database_url, tmp_path, AGENT_ENVIRONMENTS_FILE=environments) as client:
            yield client


def fetch(api: TestClient, workflow_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/workflows/{workflow_id}", headers=auth("alice")).json()
    return body


def approve(api: TestClient, workflow_id: str, approval_id: str) -> dict[str, Any]:
    """Approve with as many approvers as the tier needs; the workflow then moves on."""
    for approver in APPROVERS:
        answer = api.post(f"/approve/{approval_id}", headers=auth(approver))
        assert answer.status_code == 202, answer.text
        moved = fetch(api, workflow_id)
        if moved["status"] != "awaiting_approval" or moved["approval_id"] != approval_id:
            return moved
        if api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()["status"] != "pending":
            return moved
    return fetch(api, workflow_id)


def test_a_stop_that_fails_verification_asks_to_start_it_again(
    live_api: TestClient, prod_web: Container, database_url: str
) -> None:
    body = {"operation": "stop", "target": "web", "environment": "prod"}
    started = live_api.post("/orchestrate", json=body, headers=auth("alice"))
    assert started.status_code == 201, started.text
    workflow_id, first = started.json()["workflow_id"], started.json()["approval_id"]
    assert first, started.json()  # a stop on prod waits for a person
    approve(live_api, workflow_id, first)

    rollback = wait_for(
        lambda: fetch(live_api, workflow_id),
        until=lambda w: w["status"] == "awaiting_approval" and w["approval_id"] != first,
        timeout_s=60,
        what="the rollback approval",
    )
    prod_web.reload()
    assert prod_web.status == "exited"  # the stop ran, and nothing started it yet
    approval = live_api.get(f"/approvals/{rollback['approval_id']}", headers=auth("bob")).json()
    assert [(s["operation"], s["target"]) for s in approval["plan"]["steps"]] == [("start", "web")]
    why = approval["context"]["rollback_of"]["verification_failed"]
    assert any("answered 503" in reason for reason in why), why

    approve(live_api, workflow_id, rollback["approval_id"])
    done = wait_for(
        lambda: fetch(live_api, workflow_id),
        until=lambda w: w["status"] not in ("awaiting_approval", "running", "planning"),
        timeout_s=60,
        what="the workflow to end",
    )
    assert done["status"] == "rolled_back", done
    assert serving(prod_web)  # started again, and the front door answers
    with psycopg.connect(database_url) as conn:
        executions = conn.execute(
            "SELECT operation, status FROM executions WHERE workflow_id = %s AND mutates"
            " ORDER BY started_at",
            (workflow_id,),
        ).fetchall()
    assert executions == [("stop", "ok"), ("start", "ok")]
