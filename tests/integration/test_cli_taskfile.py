"""The operator's loop from a shell: the `devops-agent` CLI and the Taskfile's tasks against a real
service process (dry-run executors) on its own throwaway Postgres database."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import KEYS, wait_for
from tests.testbed.postgres import PostgresServer
from tests.testbed.service import ServiceProcess

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv" / "bin" / "devops-agent"
TASK = REPO / ".venv" / "bin" / "task"
TASKFILE = REPO / "Taskfile.yml"
COMMAND_DEADLINE_S = 60
WORKFLOW_DEADLINE_S = 60


@dataclass
class Operators:
    """Runs the CLI and `task` as one of the demo principals, from outside the checkout."""

    base_url: str
    database_url: str
    workdir: Path

    def env(self, who: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
        return inherited | {
            "AGENT_URL": self.base_url,
            "AGENT_API_KEY": KEYS[who],
            "DATABASE_URL": self.database_url,
            "AGENT_DATA_DIR": str(self.workdir),
        }

    def run(self, who: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            env=self.env(who),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=COMMAND_DEADLINE_S,
            check=False,
        )

    def cli(self, who: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(who, [str(CLI), *args])

    def cli_json(self, who: str, *args: str) -> Any:
        done = self.cli(who, *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def task(self, who: str, name: str, **variables: str) -> subprocess.CompletedProcess[str]:
        assigned = [f"{key}={value}" for key, value in variables.items()]
        return self.run(who, [str(TASK), "--taskfile", str(TASKFILE), name, *assigned])

    def start(self, text: str = "restart web on prod") -> dict[str, Any]:
        """A request awaiting approval; each test names its own target, since a second
        request for the same restart would merge into the first (one owner per target)."""
        started: dict[str, Any] = self.cli_json("alice", "workflows", "start", text)
        assert started["status"] == "awaiting_approval", started
        assert started["approval_id"], started
        return started

    def wait_status(self, workflow_id: str, status: str) -> dict[str, Any]:
        workflow: dict[str, Any] = wait_for(
            lambda: self.cli_json("alice", "workflows", "status", workflow_id),
            until=lambda w: w["status"] == status,
            timeout_s=WORKFLOW_DEADLINE_S,
            interval_s=0.2,
            what=f"workflow {workflow_id} {status}",
        )
        return workflow


@pytest.fixture(scope="module")
def cli_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A database of this module's own: no other test's workflows for the service to recover."""
    url = postgres_server.create_database("cli")
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="module")
def operators(
    cli_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operators]:
    workdir = tmp_path_factory.mktemp("cli")
    service = ServiceProcess(
        env={
            "DATABASE_URL": cli_database_url,
            "AGENT_DRY_RUN": "true",
            "AGENT_ENVIRONMENTS_FILE": str(REPO / "tests" / "fixtures" / "environments.yml"),
            "AGENT_CONFIG_DIR": str(REPO / "config"),
            "AGENT_DATA_DIR": str(workdir),
            # Only `clean-expired` expires approvals here, so its count is this test's to know.
            "AGENT_SWEEP_INTERVAL_S": "3600",
        },
        log_path=workdir / "service.log",
    )
    service.start()
    try:
        yield Operators(service.base_url, cli_database_url, workdir)
    finally:
        service.stop()


def test_cli_starts_lists_and_refuses_a_self_approval(operators: Operators) -> None:
    started = operators.start()
    approval_id = started["approval_id"]
    assert started["risk"]["tier"] in ("high", "critical")

    pending = operators.cli_json("bob", "approvals", "list")
    assert approval_id in [item["id"] for item in pending]

    own = operators.cli("alice", "approvals", "approve", approval_id, "--reason", "mine")
    assert own.returncode == 1
    assert own.stderr.startswith("error: 403 Forbidden: ")
    assert "requested this work" in own.stderr
    assert "Traceback" not in own.stderr
    assert operators.cli_json("bob", "approvals", "show", approval_id)["status"] == "pending"


def test_task_approve_runs_the_workflow_to_completion(operators: Operators) -> None:
    started = operators.start("restart api on dev")
    workflow_id, approval_id = started["workflow_id"], started["approval_id"]

    listed = operators.task("bob", "workflow:list-pending")
    assert listed.returncode == 0, listed.stderr
    assert approval_id in listed.stdout and workflow_id in listed.stdout

    status = operators.task("bob", "workflow:status", ID=workflow_id)
    assert status.returncode == 0, status.stderr
    assert "awaiting_approval" in status.stdout and approval_id in status.stdout

    approved = operators.task("bob", "workflow:approve", ID=approval_id, REASON="ok")
    assert approved.returncode == 0, approved.stderr
    assert f"approval {approval_id} is approved" in approved.stdout

    done = operators.wait_status(workflow_id, "completed")
    assert [e["status"] for e in done["executions"]] == ["ok"]
    actions = [(a["action"], a["actor"], a["reason"]) for a in done["approvals"][0]["actions"]]
    assert actions == [("requested", "alice", None), ("approve", "bob", "ok")]


def test_task_reject_needs_a_reason_and_stops_the_workflow(operators: Operators) -> None:
    started = operators.start("restart orders-db on prod")
    workflow_id, approval_id = started["workflow_id"], started["approval_id"]

    no_reason = operators.task("bob", "workflow:reject", ID=approval_id)
    assert no_reason.returncode != 0
    assert "REASON" in no_reason.stderr
    assert operators.cli_json("bob", "approvals", "show", approval_id)["status"] == "pending"

    rejected = operators.task("bob", "workflow:reject", ID=approval_id, REASON="peak traffic")
    assert rejected.returncode == 0, rejected.stderr
    done = operators.wait_status(workflow_id, "rejected")
    assert done["error"] == "peak traffic"
    assert done["executions"] == []


def test_task_clean_expired_expires_what_is_past_its_ttl(operators: Operators) -> None:
    started = operators.start("restart web on dev")
    with psycopg.connect(operators.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE id = %s",
            (started["approval_id"],),
        )

    refused = operators.task("alice", "workflow:clean-expired")
    assert refused.returncode != 0
    assert "403 Forbidden" in refused.stderr and "ops-lead or admin" in refused.stderr

    cleaned = operators.task("carol", "workflow:clean-expired")
    assert cleaned.returncode == 0, cleaned.stderr
    assert re.search(r"expired 1 approval request", cleaned.stdout), cleaned.stdout
    done = operators.wait_status(started["workflow_id"], "expired")
    assert done["executions"] == []

    again = operators.task("carol", "workflow:clean-expired")
    assert again.returncode == 0, again.stderr
    assert "expired 0 approval request" in again.stdout


def test_task_init_db_finds_the_database_up_to_date(operators: Operators) -> None:
    initialized = operators.task("dave", "workflow:init-db")
    assert initialized.returncode == 0, initialized.stderr
    assert "database is up to date" in initialized.stdout
