"""`langgraph dev` as a real process on a loopback port, driven with the LangGraph Python SDK:
a restart on prod (dry run: in-memory executors) runs to the gate, shows an interrupt the Agent
Inbox can display, resumes with an Agent Inbox answer, and completes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.schema import Command

from tests.testbed.service import free_port

REPO = Path(__file__).resolve().parents[2]
LANGGRAPH = REPO / ".venv-langgraph" / "bin" / "langgraph"  # scripts/test.sh makes it
STARTUP_DEADLINE_S = 120.0


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "LANGSMITH"))}
    env |= {
        "DATABASE_URL": database_url,
        "AGENT_CONFIG_DIR": str(REPO / "config"),
        "AGENT_ENVIRONMENTS_FILE": str(REPO / "tests" / "fixtures" / "environments.yml"),
        "AGENT_DATA_DIR": str(tmp_path),
        "AGENT_DRY_RUN": "true",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
    }
    log_path = tmp_path / "langgraph.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(LANGGRAPH),
                "dev",
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--no-browser", "--no-reload", "--allow-blocking"),
                *("--config", str(REPO / "langgraph.json")),
            ],
            cwd=REPO,  # langgraph.json paths are relative to the working directory
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"langgraph dev exited:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"langgraph dev not up:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


async def drive(url: str) -> dict[str, Any]:
    client = get_client(url=url)
    thread = await client.threads.create()
    thread_id = thread["thread_id"]
    request = {"source": "api", "requester": "alice", "text": "restart web on prod"}
    await client.runs.wait(thread_id, "devops_workflow", input={"request": request})
    paused = await client.threads.get_state(thread_id)
    interrupts = [i for task in paused["tasks"] for i in task.get("interrupts", [])]
    await client.runs.wait(
        thread_id,
        "devops_workflow",
        command=Command(resume=[{"type": "accept", "args": None}]),
    )
    done = await client.threads.get_state(thread_id)
    return {"thread_id": thread_id, "interrupts": interrupts, "paused": paused, "done": done}


def test_a_run_pauses_at_the_gate_and_completes_after_an_inbox_accept(
    server: str, database_url: str
) -> None:
    outcome = asyncio.run(drive(server))
    assert outcome["paused"]["next"] == ["gate"]
    (shown,) = outcome["interrupts"]
    value = shown["value"]
    assert value["action_request"]["action"] == "approve_plan"
    assert value["action_request"]["args"]["steps"][0]["operation"] == "restart"
    assert value["config"] == {
        "allow_accept": True,
        "allow_ignore": True,
        "allow_respond": True,
        "allow_edit": False,
    }
    assert "restart" in value["description"] and "web" in value["description"]
    assert value["approval_id"]

    final = outcome["done"]["values"]
    assert outcome["done"]["next"] == []
    assert final["status"] == "completed", final
    assert final["decision"]["decided_by"] == ["agent-inbox"]
    assert final["results"][0]["status"] == "ok"

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT source, status FROM workflows WHERE id = %s", (outcome["thread_id"],)
        ).fetchone()
        approvals = conn.execute(
            "SELECT count(*) FROM approval_requests WHERE workflow_id = %s",
            (outcome["thread_id"],),
        ).fetchone()
    assert row == ("langgraph", "completed")
    assert approvals == (1,)
