"""What the chat tests share: the service on real Postgres with in-memory executors, with or
without an LLM (the real ChatOpenAI client against the local stub), and small call helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.catalog import Catalog, load_catalog
from shared.lib.executors.fake import FakeExecutor
from shared.lib.planning.llm import PLAN_TOOL
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, auth
from tests.testbed.openai_stub import OpenAIStub


def catalog() -> Catalog:
    return load_catalog(config_dir=CONFIG_DIR)


@contextmanager
def chat_api(
    *,
    database_url: str,
    data_dir: Path,
    executors: dict[str, FakeExecutor],
    stub: OpenAIStub | None = None,
) -> Iterator[TestClient]:
    """The service; planning with the stubbed model when `stub` is given, else offline."""
    llm: dict[str, Any] = {}
    if stub is not None:
        llm = {"LLM_BASE_URL": stub.base_url, "LLM_API_KEY": "test-key", "LLM_TIMEOUT_S": 5}
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=data_dir,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_SWEEP_INTERVAL_S=0.5,
        **llm,
    )
    with TestClient(create_app(settings, executors=executors)) as client:
        yield client


def say(api: TestClient, who: str, message: str, session_id: str | None = None) -> dict[str, Any]:
    """POST /chat as `who`; the reply body (asserting a 200)."""
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    response = api.post("/chat", json=body, headers=auth(who))
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def stream(
    api: TestClient, who: str, message: str, session_id: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """POST /chat/stream as `who`; the (event, data) pairs in the order they came."""
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    with api.stream("POST", "/chat/stream", json=body, headers=auth(who)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def plan_call(
    *steps: dict[str, Any], intent: str = "action", rationale: str = "as asked", **extra: Any
) -> dict[str, Any]:
    """The arguments of a `submit_plan` call, as a model would send them."""
    return {"intent": intent, "steps": list(steps), "rationale": rationale, **extra}


def step(
    operation: str, target: str, environment: str | None = None, **params: Any
) -> dict[str, Any]:
    found: dict[str, Any] = {"operation": operation, "target": target}
    if environment is not None:
        found["environment"] = environment
    if params:
        found["params"] = params
    return found


def script_plan(stub: OpenAIStub, arguments: dict[str, Any] | str) -> None:
    stub.reply_tool_call(PLAN_TOOL, arguments)


def tool_messages(request: dict[str, Any]) -> list[str]:
    """The tool results (validation errors) a request sent back to the model."""
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def mutating_calls(executors: dict[str, FakeExecutor]) -> list[str]:
    """Every call that reached an executor with an operation that changes its target."""
    operations = catalog().operations
    return [
        f"{call.operation} {call.target.name}"
        for executor in executors.values()
        for call in executor.calls
        if operations[call.operation].mutates
    ]


def all_calls(executors: dict[str, FakeExecutor]) -> list[str]:
    return [
        f"{call.operation} {call.target.name}"
        for executor in executors.values()
        for call in executor.calls
    ]
