"""End to end on the real thing: Postgres, the Docker Engine and a real container.

"restart web on prod" waits for an approver; the requester cannot approve it; an approver's
approval restarts the container exactly once and the workflow completes with its audit trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest
from docker.models.containers import Container
from fastapi.testclient import TestClient

from tests.helpers import auth, wait_for
from tests.integration.service_support import agent_api, point_prod_web_at
from tests.testbed.docker_fixtures import ContainerFactory


def started_at(container: Container) -> str:
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


@pytest.fixture
def prod_web(container_factory: ContainerFactory) -> Container:
    return container_factory("prod-web")


@pytest.fixture
def live_api(
    database_url: str,
    tmp_path: Path,
    prod_web: Container,
    docker_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    point_prod_web_at(monkeypatch, prod_web, docker_url)
    with agent_api(database_url, tmp_path) as client:
        yield client


def fetch(api: TestClient, workflow_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/workflows/{workflow_id}", headers=auth("alice")).json()
    return body


def test_restart_web_on_prod_needs_an_approver_and_restarts_once(
    live_api: TestClient,
    prod_web: Container,
    database_url: str,
    docker_client: docker.DockerClient,
) -> None:
    before = started_at(prod_web)
    started = live_api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    )
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["status"] == "awaiting_approval"
    approval_id, workflow_id = body["approval_id"], body["workflow_id"]

    approval = live_api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()
    target_state = next(iter(approval["context"]["targets"].values()))
    assert target_state["state"]["running"] is True  # the approver sees the live state
    assert approval["context"]["rollback"][0]["inverse"] is None  # restart has no inverse

    assert live_api.post(f"/approve/{approval_id}", headers=auth("alice")).status_code == 403
    assert started_at(prod_web) == before

    approved = live_api.post(f"/approve/{approval_id}", headers=auth("bob"))
    assert approved.status_code == 202, approved.text
    done = wait_for(
        lambda: fetch(live_api, workflow_id),
        until=lambda w: w["status"] in ("completed", "failed"),
        what="workflow finished",
    )
    assert done["status"] == "completed", done
    after = started_at(prod_web)
    assert after != before
    assert done["verification"][0]["passed"] is True

    with psycopg.connect(database_url) as conn:
        executions = conn.execute(
            "SELECT operation, status FROM executions WHERE workflow_id = %s", (workflow_id,)
        ).fetchall()
        audit = conn.execute(
            "SELECT action, actor FROM approval_actions WHERE workflow_id = %s ORDER BY id",
            (workflow_id,),
        ).fetchall()
    assert executions == [("restart", "ok")]
    assert audit == [("requested", "alice"), ("approve", "bob")]
    events = [event["event"] for event in done["timeline"]]
    assert events == [
        "received",
        "planned",
        "assessed",
        "approval_requested",
        "executing",
        "step_finished",
        "verified",
        "completed",
    ]
    # Exactly once: nothing restarts the container again after completion.
    assert started_at(prod_web) == after


def test_a_container_restarted_by_hand_after_the_pause_is_not_restarted_again(
    live_api: TestClient, prod_web: Container, database_url: str
) -> None:
    """Drift: the approver decided about the container as it was at the pause. Restarted by hand
    meanwhile, it is not restarted again: the change is shown and a new round asks again."""
    started = live_api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    )
    assert started.status_code == 201, started.text
    first_id, workflow_id = started.json()["approval_id"], started.json()["workflow_id"]
    before = started_at(prod_web)

    prod_web.restart(timeout=1)  # someone restarts it by hand while the approval waits
    by_hand = started_at(prod_web)
    assert by_hand != before

    assert live_api.post(f"/approve/{first_id}", headers=auth("bob")).status_code == 202
    asked_again = wait_for(
        lambda: fetch(live_api, workflow_id),
        until=lambda w: w["status"] == "awaiting_approval" and w["approval_id"] != first_id,
        what="a second round after drift",
    )
    assert started_at(prod_web) == by_hand  # the agent did not restart it again
    second = live_api.get(f"/approvals/{asked_again['approval_id']}", headers=auth("bob")).json()
    assert second["round"] == 2
    changed = next(iter(second["context"]["drift"]["targets"].values()))
    started_change = next(c for c in changed if c["field"] == "started_at")
    assert started_change["before"] == before and started_change["now"] == by_hand
    assert "drifted" in [event["event"] for event in asked_again["timeline"]]

    second_id = asked_again["approval_id"]
    assert live_api.post(f"/approve/{second_id}", headers=auth("bob")).status_code == 202
    done = wait_for(
        lambda: fetch(live_api, workflow_id),
        until=lambda w: w["status"] in ("completed", "failed"),
        what="workflow finished",
    )
    assert done["status"] == "completed", done
    assert started_at(prod_web) != by_hand
    with psycopg.connect(database_url) as conn:
        executions = conn.execute(
            "SELECT operation, status FROM executions WHERE workflow_id = %s AND mutates",
            (workflow_id,),
        ).fetchall()
    assert executions == [("restart", "ok")]  # restarted once, by the second round
