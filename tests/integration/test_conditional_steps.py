"""Conditional steps through the real app and Postgres (in-memory executors): a restart that runs
only if the health read before it failed is skipped and recorded in the ledger with the reason
when the target is healthy (nobody is asked: the read before the gate ruled it out), and shown
with its condition and run once approved when it is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from shared.lib.executors.fake import FakeExecutor
from tests.helpers import auth, wait_for
from tests.integration.service_support import agent_api

CONDITIONAL_RESTART = {
    "steps": [
        {"operation": "health", "target": "web", "environment": "prod"},
        {
            "operation": "restart",
            "target": "web",
            "environment": "prod",
            "when": {"step": 0, "status": "failed"},
        },
    ]
}


@pytest.fixture
def api(
    empty_database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]
) -> Iterator[TestClient]:
    with agent_api(empty_database_url, tmp_path, executors=fakes) as client:
        yield client


def start(api: TestClient) -> dict[str, Any]:
    started = api.post("/orchestrate", json=CONDITIONAL_RESTART, headers=auth("alice"))
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    return body


def ended(api: TestClient, workflow_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: api.get(f"/workflows/{workflow_id}", headers=auth("alice")).json(),
        until=lambda w: w["status"] not in ("awaiting_approval", "running", "planning"),
        what="the workflow to end",
    )


def test_a_restart_whose_condition_does_not_hold_is_skipped_and_nobody_is_asked(
    api: TestClient, fakes: dict[str, FakeExecutor], empty_database_url: str
) -> None:
    started = start(api)
    done = ended(api, started["workflow_id"])
    assert done["status"] == "completed", done
    assert done["approval_id"] is None  # the health read ruled the restart out before the gate
    assert "approval_not_needed" in [e["event"] for e in done["timeline"]]
    assert [c.operation for c in fakes["docker"].calls if c.operation == "restart"] == []
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(
            "SELECT step, operation, status, result->>'reason' FROM executions"
            " WHERE workflow_id = %s ORDER BY step",
            (done["workflow_id"],),
        ).fetchall()
        approvals = conn.execute("SELECT count(*) FROM approval_requests").fetchone()
    assert [(r[0], r[1], r[2]) for r in rows] == [(0, "health", "ok"), (1, "restart", "skipped")]
    assert "only if step 0 failed" in rows[1][3] and "ended ok" in rows[1][3]
    assert approvals == (0,)


def test_a_restart_whose_condition_holds_is_shown_with_it_and_runs_once_approved(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    fakes["docker"].target("web").running = False
    started = start(api)
    assert started["status"] == "awaiting_approval", started
    approval = api.get(f"/approvals/{started['approval_id']}", headers=auth("bob")).json()
    assert approval["plan"]["steps"][1]["when"] == {"step": 0, "status": "failed"}  # shown
    assert approval["context"]["evidence"][0]["status"] == "failed"  # why it would run
    assert api.post(f"/approve/{started['approval_id']}", headers=auth("carol")).status_code == 202
    done = ended(api, started["workflow_id"])
    restarts = [c.operation for c in fakes["docker"].calls if c.operation == "restart"]
    assert restarts == ["restart"]
    assert done["status"] == "completed", done
