"""The rollback gate through the real app and Postgres (in-memory executors): a mutation whose
verification fails opens a rollback approval pre-filled with the inverse operations; approved,
it runs them; rejected, the workflow closes `failed` with the reason; with no inverse, it says
so and ends `failed` for a person to look."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.lib.executors.fake import FakeExecutor
from tests.helpers import auth, wait_for
from tests.integration.service_support import agent_api


@pytest.fixture
def api(
    empty_database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]
) -> Iterator[TestClient]:
    with agent_api(empty_database_url, tmp_path, executors=fakes) as client:
        yield client


def fetch(api: TestClient, workflow_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/workflows/{workflow_id}", headers=auth("alice")).json()
    return body


def asking(api: TestClient, workflow_id: str, *, not_: str | None = None) -> dict[str, Any]:
    return wait_for(
        lambda: fetch(api, workflow_id),
        until=lambda w: w["status"] == "awaiting_approval" and w["approval_id"] != not_,
        what="an approval to decide",
    )


def ended(api: TestClient, workflow_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: fetch(api, workflow_id),
        until=lambda w: w["status"] not in ("planning", "awaiting_approval", "running"),
        what="the workflow to end",
    )


def start_failing_verification(
    api: TestClient, fakes: dict[str, FakeExecutor], operation: str
) -> tuple[str, str]:
    """`operation` on prod/web, approved; the target then fails its health probe."""
    body = {"operation": operation, "target": "web", "environment": "prod"}
    started = api.post("/orchestrate", json=body, headers=auth("alice")).json()
    workflow_id = started["workflow_id"]
    first = asking(api, workflow_id)["approval_id"]
    fakes["docker"].target("web").healthy = False
    approved = api.post(f"/approve/{first}", headers=auth("carol"))
    assert approved.status_code == 202, approved.text
    return workflow_id, first


def test_a_failed_verification_opens_a_rollback_approval_that_runs_the_inverse(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    workflow_id, first = start_failing_verification(api, fakes, "start")
    second = asking(api, workflow_id, not_=first)
    approval = api.get(f"/approvals/{second['approval_id']}", headers=auth("bob")).json()
    assert [(s["operation"], s["target"]) for s in approval["plan"]["steps"]] == [("stop", "web")]
    assert approval["context"]["rollback_of"]["verification_failed"]  # why, for the approver
    assert "rollback_proposed" in [e["event"] for e in second["timeline"]]
    assert [c.operation for c in fakes["docker"].calls if c.operation == "stop"] == []

    approved = api.post(f"/approve/{second['approval_id']}", headers=auth("carol"))
    assert approved.status_code == 202, approved.text
    done = ended(api, workflow_id)
    assert done["status"] == "rolled_back", done
    assert [c.operation for c in fakes["docker"].calls if c.operation in ("start", "stop")] == [
        "start",
        "stop",
    ]


def test_a_rejected_rollback_closes_the_workflow_failed_with_the_reason(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    workflow_id, first = start_failing_verification(api, fakes, "start")
    second = asking(api, workflow_id, not_=first)
    rejected = api.post(
        f"/reject/{second['approval_id']}",
        json={"reason": "leave it running, paging the owner"},
        headers=auth("carol"),
    )
    assert rejected.status_code == 202, rejected.text
    done = ended(api, workflow_id)
    assert done["status"] == "failed"
    assert "leave it running, paging the owner" in done["error"]
    assert [c.operation for c in fakes["docker"].calls if c.operation == "stop"] == []


def test_without_an_inverse_the_workflow_says_so_and_ends_failed(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    workflow_id, _ = start_failing_verification(api, fakes, "restart")
    done = ended(api, workflow_id)
    assert done["status"] == "failed"
    assert "nothing that ran has an inverse (restart on web)" in done["error"]
    assert "rollback_impossible" in [e["event"] for e in done["timeline"]]
