"""Which approval an alert's resolution withdraws (real Postgres, the service in process): the
one of the workflow that answers it, even when its own workflow merged into another; not while
another alert that workflow answers still fires; and never one a person asked for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.lib.executors.fake import FakeExecutor
from tests.helpers import auth, orchestrate, wait_for, wait_status, workflow
from tests.integration.alerts_support import TOKEN, alert, delivered
from tests.integration.service_support import agent_api


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    return empty_database_url


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    fakes["docker"].target("web").running = False  # down, as the alerts about it say
    with agent_api(
        database_url, tmp_path, executors=fakes, AGENT_ALERT_WEBHOOK_TOKEN=TOKEN
    ) as client:
        yield client


def _fire(api: TestClient, fingerprint: str) -> dict[str, Any]:
    fired: dict[str, Any] = delivered(api, alert(service="web", env="dev", fingerprint=fingerprint))
    return fired["alerts"][0]


def _resolve(api: TestClient, fingerprint: str) -> dict[str, Any]:
    ended = alert("resolved", service="web", env="dev", fingerprint=fingerprint)
    resolved: dict[str, Any] = delivered(api, ended)["alerts"][0]
    return resolved


def _approval_status(api: TestClient, approval_id: str) -> str:
    status: str = api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()["status"]
    return status


def test_a_merged_alert_still_firing_keeps_the_approval_until_it_resolves(api: TestClient) -> None:
    first = _fire(api, "fp-web-1")
    owner = workflow(api, first["workflow_id"])
    assert owner["status"] == "awaiting_approval", owner
    second = _fire(api, "fp-web-2")
    assert workflow(api, second["workflow_id"])["merged_into"] == first["workflow_id"]

    kept = _resolve(api, "fp-web-1")
    assert kept["outcome"] == "resolved", kept
    assert "1 other alerts merged into it fire" in kept["reason"]
    assert _approval_status(api, owner["approval_id"]) == "pending"

    last = _resolve(api, "fp-web-2")  # its own workflow merged: the owner's approval goes
    assert last["outcome"] == "withdrawn", last
    assert _approval_status(api, owner["approval_id"]) == "withdrawn"


def test_an_alert_merged_into_a_persons_request_leaves_it_to_them(api: TestClient) -> None:
    asked = orchestrate(api, {"operation": "restart", "target": "web", "environment": "dev"})
    assert asked["status"] == "awaiting_approval", asked
    fired = _fire(api, "fp-web-3")
    assert workflow(api, fired["workflow_id"])["merged_into"] == asked["workflow_id"]

    resolved = _resolve(api, "fp-web-3")
    assert resolved["outcome"] == "resolved", resolved
    assert "stays theirs" in resolved["reason"]
    assert _approval_status(api, asked["approval_id"]) == "pending"


def test_an_alert_resolved_while_its_recovery_waits_for_the_target_ends_it(
    api: TestClient,
) -> None:
    """It waited behind a person's stop of the same target; resolved meanwhile, it still asked
    for approval once the stop ended. Now it ends `withdrawn` and asks nobody."""
    stop = orchestrate(api, {"operation": "stop", "target": "api", "environment": "dev"})
    assert stop["status"] == "awaiting_approval", stop
    fired: dict[str, Any] = delivered(api, alert(service="api", env="dev", fingerprint="fp-api-1"))[
        "alerts"
    ][0]
    wait_for(
        lambda: workflow(api, fired["workflow_id"]),
        until=lambda w: w["status"] == "waiting_for_target",
        what="the alert's recovery waiting behind the stop",
    )
    ended = alert("resolved", service="api", env="dev", fingerprint="fp-api-1")
    resolved = delivered(api, ended)["alerts"][0]
    assert resolved["outcome"] == "withdrawn", resolved
    done = wait_status(api, fired["workflow_id"], "withdrawn")
    assert "resolved while its recovery waited" in done["error"]

    approved = api.post(f"/approve/{stop['approval_id']}", headers=auth("bob"))
    assert approved.status_code == 202, approved.text
    wait_status(api, stop["workflow_id"], "completed")
    after = workflow(api, fired["workflow_id"])
    assert (after["status"], after["approvals"]) == ("withdrawn", [])  # it never asked
