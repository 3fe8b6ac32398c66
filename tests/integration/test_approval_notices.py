"""A decision taken on another replica reaches this one through LISTEN/NOTIFY and resumes the
workflow at once, not after the recovery grace; this replica's own notices are ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from shared.lib.approvals.wakeups import CHANNEL
from shared.lib.executors.fake import FakeExecutor
from tests.helpers import auth, wait_for, wait_status
from tests.integration.service_support import agent_api


@pytest.fixture
def api(database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]) -> Iterator[TestClient]:
    # AGENT_RECOVERY_GRACE_S: recovery would not touch the decision for an hour
    with agent_api(database_url, tmp_path, executors=fakes, AGENT_RECOVERY_GRACE_S=3600) as client:
        yield client


def _listening(database_url: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query = %s",
            (f"LISTEN {CHANNEL}",),
        ).fetchone()
    return bool(row and row[0])


def _decide_elsewhere(database_url: str, approval_id: str, *, notify: bool) -> None:
    """What another replica's ApprovalStore.decide writes, committed by a process that then
    died before it could resume the workflow."""
    wait_for(lambda: _listening(database_url), until=bool, what="the service LISTENing")
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO approval_actions (approval_id, workflow_id, action, actor, role,"
            " plan_hash) SELECT id, workflow_id, 'approve', 'bob', 'approver', plan_hash"
            " FROM approval_requests WHERE id = %s",
            (approval_id,),
        )
        conn.execute(
            "UPDATE approval_requests SET status = 'approved', decided_at = now() WHERE id = %s",
            (approval_id,),
        )
        if notify:
            payload = {"approval_id": approval_id, "workflow_id": "-", "origin": "replica-b"}
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(payload)))


def test_a_decision_on_another_replica_resumes_here_at_once(
    api: TestClient, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    started = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    ).json()
    assert started["status"] == "awaiting_approval"
    _decide_elsewhere(database_url, started["approval_id"], notify=True)
    done = wait_status(api, started["workflow_id"], "completed")
    assert fakes["docker"].target("web").restart_count == 1
    assert [e["status"] for e in done["executions"]] == ["ok"]


def test_a_notice_nobody_sent_changes_nothing(
    api: TestClient, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    started = api.post(
        "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
    ).json()
    wait_for(lambda: _listening(database_url), until=bool, what="the service LISTENing")
    with psycopg.connect(database_url, autocommit=True) as conn:
        payload = {"approval_id": started["approval_id"], "workflow_id": "-", "origin": "b"}
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(payload)))
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "not json"))
    # Undecided: the listener's resume finds no decision; the approval still works after.
    assert api.post(f"/approve/{started['approval_id']}", headers=auth("bob")).status_code == 202
    wait_status(api, started["workflow_id"], "completed")
    assert fakes["docker"].target("web").restart_count == 1
