"""POST /chat, /chat/stream and GET /chat/{id} on real Postgres with in-memory executors:
through the real ChatOpenAI client against a scripted OpenAI-compatible stub, and offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.lib.executors.fake import FakeExecutor
from shared.lib.planning.llm import PLAN_TOOL
from shared.lib.planning.llm_reads import READ_TOOL
from tests.helpers import auth, wait_status
from tests.integration.chat_support import (
    all_calls,
    catalog,
    chat_api,
    plan_call,
    say,
    script_plan,
    step,
    stream,
    tool_messages,
)
from tests.testbed.openai_stub import OpenAIStub

SLOW_API = "the api looks slow, check it and restart it if needed"


@pytest.fixture
def llm_api(
    database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> Iterator[TestClient]:
    with chat_api(
        database_url=database_url, data_dir=tmp_path, executors=fakes, stub=stub
    ) as client:
        yield client


@pytest.fixture
def api(database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]) -> Iterator[TestClient]:
    with chat_api(database_url=database_url, data_dir=tmp_path, executors=fakes) as client:
        yield client


def script_slow_api(stub: OpenAIStub) -> None:
    script_plan(
        stub,
        plan_call(
            step("health", "api", "dev"),
            step("logs", "api", "dev", tail=50),
            step("stats", "api", "dev"),
            step("restart", "api", "dev"),
            rationale="check the api, then restart it since it is slow",
        ),
    )


# -- with the model -----------------------------------------------------------------------


def test_model_checks_at_once_and_the_restart_waits_for_an_approver(
    llm_api: TestClient, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> None:
    script_slow_api(stub)
    docker = fakes["docker"]
    docker.target("api").logs = ["GET /orders 200 2300ms", "GET /orders 200 2100ms"]

    first = say(llm_api, "alice", SLOW_API)

    assert first["status"] == "awaiting_approval", first["reply"]
    assert first["planner"] == "llm"
    assert [(r["operation"], r["status"]) for r in first["results"]] == [
        ("health", "ok"),
        ("logs", "ok"),
        ("stats", "ok"),
    ]
    assert "2300ms" in first["reply"]
    assert [(s["operation"], s["target"], s["environment"]) for s in first["plan"]] == [
        ("restart", "api", "dev")
    ]
    assert first["risk"]["tier"] == "medium"
    assert any(reason.startswith("dev-mutation") for reason in first["risk"]["reasons"])
    assert first["required_approvals"] == 1 and "approver" in first["allowed_roles"]
    for words in ("restart api in dev", "medium", "dev-mutation", "1 approval", "approver"):
        assert words in first["reply"], first["reply"]
    assert docker.target("api").restart_count == 0

    sent = stub.requests
    assert len(sent) == 1
    tool = sent[0]["tools"][0]["function"]
    assert tool["name"] == PLAN_TOOL
    step_schema = tool["parameters"]["properties"]["steps"]["items"]["properties"]
    assert step_schema["operation"]["enum"] == catalog().names()
    assert not {"risk", "tier", "risk_level"} & set(tool["parameters"]["properties"])
    # A tool call is required: the plan, or first a read (read-only operations only).
    assert sent[0]["tool_choice"] == "required"
    reads = sent[0]["tools"][1]["function"]
    assert reads["name"] == READ_TOOL
    readable = set(reads["parameters"]["properties"]["operation"]["enum"])
    assert readable and not any(catalog().get(name).mutates for name in readable)
    assert "restart" not in readable
    assert sent[0]["messages"][-1] == {"role": "user", "content": SLOW_API}

    own = say(llm_api, "alice", "yes, approve", first["session_id"])
    assert own["status"] == "refused"
    assert "requested this work and cannot decide" in own["reply"]
    assert len(stub.requests) == 1  # a decision never goes through the model

    approver = say(llm_api, "bob", f"approve {first['approval_id']}, looks right")
    assert approver["status"] == "approved", approver["reply"]
    done = wait_status(llm_api, first["workflow_id"], "completed")
    assert docker.target("api").restart_count == 1
    assert done["source"] == "chat" and done["requester"] == "alice"
    actions = [(a["action"], a["actor"]) for a in done["approvals"][0]["actions"]]
    assert actions == [("requested", "alice"), ("approve", "bob")]


def test_an_approver_can_use_post_approve_for_a_chat_workflow(
    llm_api: TestClient, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> None:
    script_slow_api(stub)
    first = say(llm_api, "alice", SLOW_API)
    approved = llm_api.post(f"/approve/{first['approval_id']}", headers=auth("bob"))
    assert approved.status_code == 202, approved.text
    wait_status(llm_api, first["workflow_id"], "completed")
    assert fakes["docker"].target("api").restart_count == 1


def test_an_invalid_plan_goes_back_to_the_model_once_with_the_error(
    llm_api: TestClient, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> None:
    script_plan(stub, plan_call(step("shell", "web", "dev", cmd="reboot")))
    script_plan(stub, plan_call(step("restart", "web", "dev")))

    reply = say(llm_api, "alice", "restart web in dev")

    assert reply["status"] == "awaiting_approval", reply["reply"]
    assert [s["operation"] for s in reply["plan"]] == ["restart"]
    first, second = stub.requests
    assert tool_messages(first) == []
    [feedback] = tool_messages(second)
    assert "unknown operation 'shell'" in feedback
    assert "restart" in feedback  # the known operations come with the error


def test_a_plan_invalid_twice_is_planned_offline(
    llm_api: TestClient, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> None:
    script_plan(stub, plan_call(step("shell", "web", "prod")))
    script_plan(stub, plan_call(step("shell", "web", "prod")))

    reply = say(llm_api, "alice", "restart web on prod")

    assert len(stub.requests) == 2
    assert reply["status"] == "awaiting_approval"
    assert reply["planner"] == "offline"
    assert reply["risk"]["tier"] == "high"
    assert "invalid twice" in reply["reply"] and "planned offline" in reply["reply"]


def test_an_unreachable_model_falls_back_to_the_offline_planner(
    llm_api: TestClient, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> None:
    stub.reply_error(503, "overloaded")
    stub.reply_error(503, "overloaded")  # the client retries once

    reply = say(llm_api, "alice", "show logs of web in dev")

    assert reply["status"] == "answered"
    assert reply["planner"] == "offline"
    assert [r["operation"] for r in reply["results"]] == ["logs"]
    assert "could not be reached" in reply["reply"]


def test_the_model_sees_the_conversation_and_what_it_is_about(
    llm_api: TestClient, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> None:
    script_plan(stub, plan_call(step("logs", "api", "dev"), intent="read_only"))
    script_plan(stub, plan_call(step("restart", "api", "dev")))

    first = say(llm_api, "alice", "show me the api logs in dev")
    then = say(llm_api, "alice", "now restart it", first["session_id"])

    assert then["status"] == "awaiting_approval"
    assert [(s["operation"], s["target"]) for s in then["plan"]] == [("restart", "api")]
    messages = stub.requests[1]["messages"]
    assert "currently about: api in dev" in messages[0]["content"]
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "show me the api logs in dev"
    assert messages[-1]["content"] == "now restart it"


def test_the_model_asking_back_runs_nothing(
    llm_api: TestClient, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> None:
    script_plan(
        stub,
        plan_call(intent="clarify", question="Which service do you mean?", rationale="unclear"),
    )
    reply = say(llm_api, "alice", "fix it")
    assert reply["status"] == "needs_clarification"
    assert reply["reply"].startswith("Which service do you mean?")
    assert {"web", "api", "worker"} <= set(reply["candidates"])
    assert all_calls(fakes) == []


def test_stream_with_the_model_sends_events_in_order(
    llm_api: TestClient, fakes: dict[str, FakeExecutor], stub: OpenAIStub
) -> None:
    script_slow_api(stub)
    events = stream(llm_api, "alice", SLOW_API)
    names = [name for name, _ in events]
    assert names == ["planning", "executing", "awaiting_approval", "result"]
    executing, awaiting, result = events[1][1], events[2][1], events[3][1]
    assert [s["operation"] for s in executing["steps"]] == ["health", "logs", "stats"]
    assert awaiting["tier"] == "medium" and awaiting["required_approvals"] == 1
    assert result["status"] == "awaiting_approval"
    assert result["approval_id"] == awaiting["approval_id"]


# -- offline ------------------------------------------------------------------------------


def test_offline_restart_on_prod_waits_for_approval(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    reply = say(api, "alice", "restart web on prod")
    assert reply["status"] == "awaiting_approval"
    assert reply["planner"] == "offline"
    assert reply["risk"]["tier"] == "high"
    rules = {reason.split(":")[0] for reason in reply["risk"]["reasons"]}
    assert {"prod-mutation", "customer-facing-prod-mutation"} <= rules
    assert "restart web in prod" in reply["reply"]
    assert reply["approval_id"] in reply["reply"]
    assert fakes["docker"].target("web").restart_count == 0


def test_offline_logs_are_answered_at_once(api: TestClient, fakes: dict[str, FakeExecutor]) -> None:
    fakes["docker"].target("web").logs = ["started", "listening on :8080"]
    reply = say(api, "alice", "show logs of web in dev")
    assert reply["status"] == "answered"
    assert reply["workflow_id"] is None and reply["approval_id"] is None
    assert "listening on :8080" in reply["reply"]
    assert all_calls(fakes) == ["logs web"]


def test_offline_a_read_asked_after_a_change_runs_after_it(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    reply = say(api, "alice", "restart web on dev and then show its logs")
    assert reply["status"] == "awaiting_approval"
    assert [(s["operation"], s["target"]) for s in reply["plan"]] == [
        ("restart", "web"),
        ("logs", "web"),
    ]
    assert reply["results"] == []
    # The logs wait for the restart (the approver's evidence is read, nothing else).
    assert "logs web" not in all_calls(fakes)
    assert fakes["docker"].target("web").restart_count == 0


def test_offline_unknown_target_gets_a_question_with_the_candidates(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    reply = say(api, "alice", "restart payments")
    assert reply["status"] == "needs_clarification"
    assert {"api", "web", "worker", "orders-db"} <= set(reply["candidates"])
    assert "api" in reply["reply"] and "web" in reply["reply"]
    assert reply["workflow_id"] is None
    assert all_calls(fakes) == []


def test_offline_ambiguous_target_asks_which_environment(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    reply = say(api, "alice", "restart web")
    assert reply["status"] == "needs_clarification"
    assert reply["candidates"] == ["dev", "prod"]
    assert all_calls(fakes) == []


def test_offline_now_restart_it_uses_the_sessions_last_target(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    first = say(api, "alice", "show logs of api in dev")
    assert first["status"] == "answered"
    then = say(api, "alice", "now restart it", first["session_id"])
    assert then["status"] == "awaiting_approval", then["reply"]
    assert [(s["operation"], s["target"], s["environment"]) for s in then["plan"]] == [
        ("restart", "api", "dev")
    ]
    assert then["risk"]["tier"] == "medium"


def test_approver_says_approve_without_an_id_and_is_shown_the_pending_ones(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    asked = say(api, "alice", "restart web on prod")
    which = say(api, "bob", "approve")
    assert which["status"] == "needs_clarification"
    assert asked["approval_id"] in which["candidates"]
    pending = say(api, "carol", "what is pending?")
    assert pending["status"] == "answered"
    assert asked["approval_id"] in pending["reply"]


def test_reject_in_chat_needs_a_reason_and_stops_the_workflow(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    asked = say(api, "alice", "restart web on prod")
    approval_id = asked["approval_id"]
    no_reason = say(api, "bob", f"reject {approval_id}")
    assert no_reason["status"] == "needs_clarification"
    rejected = say(api, "bob", f"reject {approval_id} because it is peak traffic")
    assert rejected["status"] == "rejected", rejected["reply"]
    done = wait_status(api, asked["workflow_id"], "rejected")
    assert done["error"] == "it is peak traffic"
    assert fakes["docker"].target("web").restart_count == 0


def test_a_session_belongs_to_its_principal(api: TestClient) -> None:
    mine = say(api, "alice", "show logs of web in dev")
    session_id = mine["session_id"]
    assert api.get(f"/chat/{session_id}", headers=auth("bob")).status_code == 404
    other = api.post(
        "/chat", json={"message": "approve it", "session_id": session_id}, headers=auth("bob")
    )
    assert other.status_code == 404
    assert api.post("/chat", json={"message": "hi"}).status_code == 401


def test_history_keeps_both_sides_and_what_the_session_is_about(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    first = say(api, "alice", "show logs of api in dev")
    second = say(api, "alice", "now restart it", first["session_id"])
    history = api.get(f"/chat/{first['session_id']}", headers=auth("alice"))
    assert history.status_code == 200, history.text
    body = history.json()
    assert body["principal"] == "alice"
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "show logs of api in dev"
    assert messages[3]["workflow_id"] == second["workflow_id"]
    assert messages[3]["approval_id"] == second["approval_id"]
    assert body["context"]["last_target"] == "api"
    assert body["context"]["last_environment"] == "dev"
    assert body["context"]["pending_approval_id"] == second["approval_id"]


def test_stream_offline_events_in_order(api: TestClient, fakes: dict[str, FakeExecutor]) -> None:
    gated = stream(api, "alice", "restart web on prod")
    assert [name for name, _ in gated] == ["planning", "awaiting_approval", "result"]
    assert gated[1][1]["tier"] == "high"
    assert gated[2][1]["status"] == "awaiting_approval"

    session_id = gated[2][1]["session_id"]
    read = stream(api, "alice", "show logs of web in dev", session_id)
    assert [name for name, _ in read] == ["planning", "executing", "result"]
    assert read[2][1]["status"] == "answered"

    history = api.get(f"/chat/{session_id}", headers=auth("alice")).json()
    assert len(history["messages"]) == 4


def test_stream_of_someone_elses_session_is_404(api: TestClient) -> None:
    mine = say(api, "alice", "show logs of web in dev")
    response = api.post(
        "/chat/stream",
        json={"message": "hi", "session_id": mine["session_id"]},
        headers=auth("bob"),
    )
    assert response.status_code == 404
