"""One owner per target, on the real thing (Postgres, the Docker Engine, a real container): two
requests to restart the same container at once, one over REST and one from an Alertmanager
delivery, make one approval and one restart, and both requesters see the outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from docker.models.containers import Container
from fastapi.testclient import TestClient

from shared.lib.execution.models import ExecutionResult, OperationCall
from shared.lib.executors.fake import FakeExecutor
from tests.helpers import auth, wait_for
from tests.integration.alerts_support import TOKEN, alert, deliver
from tests.integration.service_support import agent_api, fake_executors, point_prod_web_at
from tests.testbed.docker_fixtures import ContainerFactory


@pytest.fixture
def prod_web(container_factory: ContainerFactory) -> Container:
    return container_factory("own-web")


@pytest.fixture
def api(
    empty_database_url: str,
    tmp_path: Path,
    prod_web: Container,
    docker_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    point_prod_web_at(monkeypatch, prod_web, docker_url)
    with agent_api(
        empty_database_url,
        tmp_path,
        AGENT_ALERT_WEBHOOK_TOKEN=TOKEN,
        AGENT_SWEEP_INTERVAL_S=0.5,
    ) as client:
        yield client


def fetch(api: TestClient, workflow_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/workflows/{workflow_id}", headers=auth("bob")).json()
    return body


def started_at(container: Container) -> str:
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


def test_a_rest_request_and_an_alert_for_the_same_restart_make_one_approval_and_one_restart(
    api: TestClient, prod_web: Container, empty_database_url: str
) -> None:
    before = started_at(prod_web)
    fired = alert(service="web", env="prod")

    def by_rest() -> httpx.Response:
        return api.post(
            "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
        )

    # The REST request first: it owns the target when the alert comes. The other order is a
    # different story (the alert's own restart waits on a failed health check, and a healthy
    # service skips it), which sent both at once made this test take one time in four or five.
    rest = by_rest()
    delivery = deliver(api, fired)
    assert rest.status_code == 201, rest.text
    assert delivery.status_code == 200, delivery.text
    rest_id = rest.json()["workflow_id"]
    with psycopg.connect(empty_database_url) as conn:
        (alert_id,) = conn.execute(
            "SELECT id FROM workflows WHERE source = 'alert'"
            " AND request->'alert'->>'fingerprint' = %s",
            (fired["fingerprint"],),
        ).fetchone() or (None,)
    assert alert_id is not None
    both = wait_for(
        lambda: sorted([fetch(api, rest_id), fetch(api, alert_id)], key=lambda w: w["status"]),
        until=lambda ws: [w["status"] for w in ws] == ["awaiting_approval", "merged"],
        what="one workflow asking, the other merged into it",
    )
    owner, merged = both
    assert merged["merged_into"] == owner["workflow_id"]
    pending = api.get("/approvals/pending", headers=auth("bob")).json()
    assert [a["workflow_id"] for a in pending] == [owner["workflow_id"]]  # one approval for two
    approval = api.get(f"/approvals/{owner['approval_id']}", headers=auth("bob")).json()
    merged_rows = [a for a in approval["actions"] if a["action"] == "merged"]
    assert [a["details"]["workflow_id"] for a in merged_rows] == [merged["workflow_id"]]
    assert "merged" in [e["event"] for e in owner["timeline"]]

    assert api.post(f"/approve/{owner['approval_id']}", headers=auth("bob")).status_code == 202
    done = wait_for(
        lambda: fetch(api, owner["workflow_id"]),
        until=lambda w: w["status"] in ("completed", "failed"),
        what="the owner finished",
    )
    assert done["status"] == "completed", done
    assert started_at(prod_web) != before
    follower = wait_for(
        lambda: fetch(api, merged["workflow_id"]),
        until=lambda w: "owner_finished" in [e["event"] for e in w["timeline"]],
        what="the merged request told the outcome",
    )
    finished = next(e for e in follower["timeline"] if e["event"] == "owner_finished")
    assert finished["detail"] == {"owner": owner["workflow_id"], "status": "completed"}
    with psycopg.connect(empty_database_url) as conn:
        restarts = conn.execute(
            "SELECT workflow_id FROM executions WHERE operation = 'restart'"
        ).fetchall()
        leases = conn.execute("SELECT count(*) FROM target_leases").fetchone()
    assert restarts == [(owner["workflow_id"],)]  # one restart for two requests
    assert leases == (0,)  # released when the owner ended


@pytest.fixture
def fake_api(
    empty_database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]
) -> Iterator[TestClient]:
    with agent_api(
        empty_database_url, tmp_path, executors=fakes, AGENT_SWEEP_INTERVAL_S=0.5
    ) as client:
        yield client


def test_another_operation_on_a_leased_target_waits_and_is_reassessed_on_release(
    fake_api: TestClient,
) -> None:
    """Different plans do not merge: the second waits with a clear status, then asks once the
    first has ended; reads of the leased target never wait."""
    body = {"operation": "restart", "target": "web", "environment": "prod"}
    first = fake_api.post("/orchestrate", json=body, headers=auth("alice")).json()
    assert first["status"] == "awaiting_approval"
    stop = {**body, "operation": "stop"}
    second = fake_api.post("/orchestrate", json=stop, headers=auth("carol")).json()
    waiting = wait_for(
        lambda: fetch(fake_api, second["workflow_id"]),
        until=lambda w: w["status"] == "waiting_for_target",
        what="the stop waiting for the restart's lease",
    )
    shown = next(e for e in waiting["timeline"] if e["event"] == "waiting_for_target")
    assert shown["detail"]["owner"] == first["workflow_id"]
    read = {**body, "operation": "logs"}
    logs = fake_api.post("/orchestrate", json=read, headers=auth("alice")).json()
    done = wait_for(
        lambda: fetch(fake_api, logs["workflow_id"]),
        until=lambda w: w["status"] not in ("planning", "running"),
        what="the read finished",
    )
    assert done["status"] == "completed", done  # a read needs no lease

    rejected = fake_api.post(
        f"/reject/{first['approval_id']}", json={"reason": "not now"}, headers=auth("bob")
    )
    assert rejected.status_code == 202, rejected.text
    asked = wait_for(
        lambda: fetch(fake_api, second["workflow_id"]),
        until=lambda w: w["status"] == "awaiting_approval",
        what="the stop re-assessed and asking once the lease was released",
    )
    assert asked["approval_id"] is not None
    assert fetch(fake_api, first["workflow_id"])["status"] == "rejected"


def test_the_same_operation_with_other_parameters_waits_instead_of_merging(
    fake_api: TestClient,
) -> None:
    """A merged request's work is the owner's: `rm -rf /tmp/b` riding on an approved
    `rm -rf /tmp/a` would never run. The same command merges; another one waits its turn."""
    body = {
        "operation": "run_command",
        "target": "worker",
        "environment": "dev",
        "params": {"argv": ["rm", "-rf", "/tmp/a"]},
    }
    first = fake_api.post("/orchestrate", json=body, headers=auth("alice")).json()
    assert first["status"] == "awaiting_approval", first
    same = fake_api.post("/orchestrate", json=body, headers=auth("carol")).json()
    assert same["status"] == "merged", same
    other_command = {**body, "params": {"argv": ["rm", "-rf", "/tmp/b"]}}
    other = fake_api.post("/orchestrate", json=other_command, headers=auth("carol")).json()
    waiting = wait_for(
        lambda: fetch(fake_api, other["workflow_id"]),
        until=lambda w: w["status"] not in ("planning", "running"),
        what="the other command settled into its state",
    )
    assert waiting["status"] == "waiting_for_target", waiting


class HeldHealthChecks(FakeExecutor):
    """A fake Docker whose health checks wait until the test lets them go."""

    def __init__(self) -> None:
        super().__init__(kind="docker")
        self.go = threading.Event()

    async def execute(self, call: OperationCall) -> ExecutionResult:
        if call.operation == "health":
            await asyncio.to_thread(self.go.wait, 30)
        return await super().execute(call)


def test_an_explicit_restart_waits_for_an_alert_whose_restart_depends_on_a_health_check(
    empty_database_url: str, tmp_path: Path
) -> None:
    """The alert's recovery restarts only if the health check fails; merged into it, the
    operator's restart would be skipped with it when the service is healthy. It waits instead,
    then asks and runs."""
    docker = HeldHealthChecks()
    executors = {**fake_executors(), "docker": docker}
    settings = {"AGENT_ALERT_WEBHOOK_TOKEN": TOKEN, "AGENT_SWEEP_INTERVAL_S": 0.5}
    with agent_api(empty_database_url, tmp_path, executors=executors, **settings) as api:
        fired = alert(service="web", env="prod")
        assert deliver(api, fired).status_code == 200
        wait_for(
            lambda: [c.operation for c in docker.calls],
            until=lambda ops: "health" in ops,
            what="the alert's workflow checking web's health, its lease taken",
        )
        with psycopg.connect(empty_database_url) as conn:
            (alert_id,) = conn.execute(
                "SELECT id FROM workflows WHERE source = 'alert'"
            ).fetchone() or (None,)
        body = {"operation": "restart", "target": "web", "environment": "prod"}
        rest = api.post("/orchestrate", json=body, headers=auth("alice")).json()
        waiting = wait_for(
            lambda: fetch(api, rest["workflow_id"]),
            until=lambda w: w["status"] != "planning",
            what="alice's restart claimed the target",
        )
        assert waiting["status"] == "waiting_for_target", waiting
        shown = next(e for e in waiting["timeline"] if e["event"] == "waiting_for_target")
        assert shown["detail"]["owner"] == alert_id

        docker.go.set()
        alerted = wait_for(
            lambda: fetch(api, alert_id),
            until=lambda w: w["status"] not in ("planning", "running"),
            what="the alert's workflow finished",
        )
        assert alerted["status"] == "completed", alerted
        skipped = [e["detail"] for e in alerted["timeline"] if e["event"] == "step_finished"]
        assert {"operation": "restart", "status": "skipped"}.items() <= skipped[2].items()
        asked = wait_for(
            lambda: fetch(api, rest["workflow_id"]),
            until=lambda w: w["status"] == "awaiting_approval",
            what="alice's restart asking once the alert's workflow released web",
        )
        approved = api.post(f"/approve/{asked['approval_id']}", headers=auth("bob"))
        assert approved.status_code == 202, approved.text
        done = wait_for(
            lambda: fetch(api, rest["workflow_id"]),
            until=lambda w: w["status"] not in ("awaiting_approval", "running"),
            what="alice's restart ran",
        )
    assert done["status"] == "completed", done
    assert docker.target("web").restart_count == 1  # hers; the alert's was skipped
