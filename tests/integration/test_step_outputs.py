"""A step's output is stored where it is read, once: the execution ledger and the workflow
record. The graph's state keeps the step's status and ledger key, so no checkpoint after the
step carries a copy of its output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from shared.lib.execution.models import DEFAULT_OUTPUT_CAP
from shared.lib.executors.fake import FakeExecutor
from tests.helpers import auth, wait_status
from tests.integration.service_support import agent_api

MARKER = "kept-once"


@pytest.fixture
def api(database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]) -> Iterator[TestClient]:
    with agent_api(database_url, tmp_path, executors=fakes) as client:
        yield client


def test_a_large_output_is_in_the_ledger_and_record_not_the_checkpoints(
    api: TestClient, fakes: dict[str, FakeExecutor], database_url: str
) -> None:
    fakes["docker"].target("web").logs = [f"{MARKER} {i:05d} {'x' * 90}" for i in range(2000)]
    started = api.post(
        "/orchestrate",
        json={"operation": "logs", "target": "web", "environment": "dev", "params": {"tail": 2000}},
        headers=auth("alice"),
    )
    assert started.status_code == 201, started.text
    workflow_id = started.json()["workflow_id"]
    done = wait_status(api, workflow_id, "completed")
    shown = done["results"][0]
    assert len(shown["stdout"]) == DEFAULT_OUTPUT_CAP and shown["truncated"] is True
    assert shown["stdout"].startswith(f"{MARKER} 00000 ")

    with psycopg.connect(database_url) as conn:
        ledger = conn.execute(
            "SELECT count(*) FROM executions WHERE workflow_id = %s"
            " AND strpos(result->>'stdout', %s) > 0",
            (workflow_id, MARKER),
        ).fetchone()
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE position(%s::bytea IN b) > 0), sum(length(b))"
            " FROM (SELECT blob AS b FROM checkpoint_blobs WHERE thread_id = %s"
            " UNION ALL SELECT blob FROM checkpoint_writes WHERE thread_id = %s"
            " UNION ALL SELECT convert_to(checkpoint::text, 'UTF8') FROM checkpoints"
            " WHERE thread_id = %s) rows",
            (MARKER.encode(), workflow_id, workflow_id, workflow_id),
        ).fetchone()
    assert row is not None
    copies, stored = row
    assert ledger == (1,)
    assert copies == 0, f"{copies} checkpoint rows carry the step's output"
    assert stored < DEFAULT_OUTPUT_CAP / 2, f"the thread's checkpoints hold {stored} bytes"
