"""LangSmith tracing of a workflow that pauses for approval, against a local capture server."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, auth, wait_for
from tests.testbed.langsmith_capture import LangSmithCapture, RunDict

BEFORE_PAUSE = ("intake", "plan", "assess_risk", "investigate", "request_approval", "gate")
AFTER_PAUSE = ("gate", "execute", "verify", "report")


def _forget_langsmith_environment() -> None:
    from langsmith import utils

    # Both are lru_cached; the overloads hide `cache_clear` from type checkers.
    for cached in (utils.get_env_var, utils.get_tracer_project):
        getattr(cached, "cache_clear")()  # noqa: B009


@pytest.fixture
def capture() -> Iterator[LangSmithCapture]:
    with LangSmithCapture() as server:
        yield server


@pytest.fixture
def tracing_to(capture: LangSmithCapture) -> Iterator[LangSmithCapture]:
    """LangSmith variables pointing at the capture, and a fresh client; all undone after."""
    from langsmith import run_trees

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LANGSMITH_TRACING", "true")
        patch.setenv("LANGSMITH_ENDPOINT", capture.url)
        patch.setenv("LANGSMITH_API_KEY", "test-key")
        patch.setenv("LANGSMITH_PROJECT", "t")
        # The client is cached per process with the endpoint it first saw.
        patch.setattr(run_trees, "_CLIENT", None)
        _forget_langsmith_environment()
        yield capture
    _forget_langsmith_environment()


@pytest.fixture
def app(empty_database_url: str, tmp_path: Path, tracing_to: LangSmithCapture) -> FastAPI:
    """The service with tracing on; the test enters and leaves it (shutdown flushes traces)."""
    settings = load_settings(
        DATABASE_URL=empty_database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_SWEEP_INTERVAL_S=0.5,
    )
    assert settings.langsmith_tracing and settings.langsmith_endpoint == tracing_to.url
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    return create_app(settings, executors=fakes)


def _metadata(run: RunDict) -> dict[str, Any]:
    metadata: dict[str, Any] = (run.get("extra") or {}).get("metadata") or {}
    return metadata


def _wait_for_runs(
    capture: LangSmithCapture, names: set[str], *, workflow_id: str, timeout_s: float = 15.0
) -> dict[str, list[RunDict]]:
    """Runs of this workflow by node name, once every name has arrived (or fail at the deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        by_name: dict[str, list[RunDict]] = {}
        for run in capture.runs().values():
            by_name.setdefault(str(run.get("name")), []).append(run)
        if names <= by_name.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    missing = names - by_name.keys()
    assert not missing, (
        f"no runs named {sorted(missing)} for {workflow_id} within {timeout_s}s; "
        f"received {sorted(by_name)}; requests {capture.requests[-10:]}; errors {capture.errors}"
    )
    return by_name


def test_every_node_is_traced_with_the_workflow_and_approval_ids(
    app: FastAPI, tracing_to: LangSmithCapture
) -> None:
    capture = tracing_to
    with TestClient(app) as api:
        started = api.post(
            "/orchestrate", json={"request": "restart web on prod"}, headers=auth("alice")
        )
        assert started.status_code == 201, started.text
        workflow_id, approval_id = started.json()["workflow_id"], started.json()["approval_id"]
        assert started.json()["status"] == "awaiting_approval"
        approved = api.post(f"/approve/{approval_id}", headers=auth("bob"), json={"reason": "ok"})
        assert approved.status_code == 202, approved.text
        wait_for(
            lambda: api.get(f"/workflows/{workflow_id}", headers=auth("alice")).json()["status"],
            until=lambda status: status == "completed",
            what=f"workflow {workflow_id} completed",
        )
    # Leaving the client ran the lifespan shutdown, which flushes queued traces.

    nodes = set(BEFORE_PAUSE) | set(AFTER_PAUSE)
    by_name = _wait_for_runs(capture, nodes | {"devops-workflow"}, workflow_id=workflow_id)
    assert not capture.errors, capture.errors

    for name in sorted(nodes | {"devops-workflow"}):
        for run in by_name[name]:
            metadata = _metadata(run)
            assert metadata.get("workflow_id") == workflow_id, (name, metadata)

    roots = by_name["devops-workflow"]
    assert {run.get("session_name") for run in roots} == {"t"}  # LANGSMITH_PROJECT
    assert len(roots) == 2, f"expected one root run before and one after the pause: {roots}"
    resumed_roots = [r for r in roots if _metadata(r).get("approval_id") == approval_id]
    assert len(resumed_roots) == 1, [_metadata(r) for r in roots]
    resumed_trace = resumed_roots[0]["trace_id"]
    first_trace = next(r["trace_id"] for r in roots if r is not resumed_roots[0])
    assert first_trace != resumed_trace  # two traces, grouped by the workflow_id metadata

    def traces_of(name: str) -> set[str]:
        return {str(run["trace_id"]) for run in by_name[name]}

    for name in BEFORE_PAUSE:
        assert str(first_trace) in traces_of(name), f"{name} not traced before the pause"
    for name in AFTER_PAUSE:
        assert str(resumed_trace) in traces_of(name), f"{name} not traced after the pause"
        resumed = [r for r in by_name[name] if str(r["trace_id"]) == str(resumed_trace)]
        assert all(_metadata(r).get("approval_id") == approval_id for r in resumed), (
            name,
            [_metadata(r) for r in resumed],
        )


@pytest.mark.parametrize("encoding", ["zstd", "gzip", None])
def test_capture_reads_multipart_runs_however_compressed(
    capture: LangSmithCapture, encoding: str | None
) -> None:
    """The test bed itself: a post and a patch of one run, as LangSmith's multipart sends them."""
    boundary = "capture-test-boundary"
    parts = [
        ("post.r1", {"id": "r1", "name": "intake", "trace_id": "t1"}),
        ("post.r1.extra", {"metadata": {"workflow_id": "wf-1"}}),
        ("patch.r1", {"id": "r1", "end_time": "2026-01-01T00:00:00Z"}),
        ("patch.r1.extra", {"metadata": {"approval_id": "a-1"}}),
    ]
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(value)}\r\n".encode()
            for name, value in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if encoding == "zstd":
        body = zstandard.ZstdCompressor().compress(body)
    elif encoding == "gzip":
        body = gzip.compress(body)
    if encoding:
        headers["Content-Encoding"] = encoding
    sent = httpx.post(f"{capture.url}/runs/multipart", content=body, headers=headers)
    assert sent.status_code == 202
    assert httpx.get(f"{capture.url}/info").json() == {}

    assert not capture.errors, capture.errors
    (run,) = capture.named("intake")
    assert run["end_time"] == "2026-01-01T00:00:00Z"
    assert _metadata(run) == {"workflow_id": "wf-1", "approval_id": "a-1"}


def test_a_chat_read_is_a_traced_workflow_with_a_ledger_row(
    app: FastAPI, tracing_to: LangSmithCapture
) -> None:
    """Issue 10: chat's run-at-once reads go through the graph, the ledger and tracing."""
    capture = tracing_to
    with TestClient(app) as api:
        reply = api.post(
            "/chat", json={"message": "show me the logs of web on dev"}, headers=auth("alice")
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["status"] == "answered", body
        assert [(r["operation"], r["target"], r["status"]) for r in body["results"]] == [
            ("logs", "web", "ok")
        ]
        listed = api.get("/workflows", headers=auth("alice")).json()
        [read] = [w for w in listed if w["plan"] and w["plan"][0]["operation"] == "logs"]
        detail = api.get(f"/workflows/{read['workflow_id']}", headers=auth("alice")).json()
        assert detail["source"] == "chat" and detail["status"] == "completed"
        assert [(e["operation"], e["status"]) for e in detail["executions"]] == [("logs", "ok")]
    by_name = _wait_for_runs(
        capture, {"devops-workflow", "execute"}, workflow_id=read["workflow_id"]
    )
    traced = {_metadata(run).get("workflow_id") for run in by_name["devops-workflow"]}
    assert read["workflow_id"] in traced
