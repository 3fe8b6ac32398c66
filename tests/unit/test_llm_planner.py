"""The LLM planner through the real ChatOpenAI client against the local stub: validation, one
retry with the error, fallbacks, and plans that never carry a model's opinion on risk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lib.catalog import load_catalog
from shared.lib.commands import load_command_policy
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.fake import FakeExecutor
from shared.lib.planning import PlanningError
from shared.lib.planning.conversation import (
    ConversationContext,
    ConversationTurn,
    OfflineConversationPlanner,
)
from shared.lib.planning.llm import PLAN_TOOL, LlmPlanner
from shared.lib.planning.llm_reads import MAX_READS, READ_TOOL
from shared.lib.planning.models import PlannedOperation
from shared.lib.settings import load_settings
from shared.lib.targets import TargetResolver, load_targets
from shared.lib.workflows.models import WorkRequest
from tests.testbed.openai_stub import OpenAIStub

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"
ENVIRONMENTS = ROOT / "tests" / "fixtures" / "environments.yml"
NOTHING = ConversationContext()


@pytest.fixture(scope="module")
def resolver() -> TargetResolver:
    return load_targets(config_dir=CONFIG_DIR, path=ENVIRONMENTS, environ={})


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture
def planner(stub: OpenAIStub, resolver: TargetResolver) -> LlmPlanner:
    catalog = load_catalog(config_dir=CONFIG_DIR)
    settings = load_settings(LLM_BASE_URL=stub.base_url, LLM_API_KEY="k", LLM_TIMEOUT_S=1)
    return LlmPlanner.from_settings(
        settings,
        catalog=catalog,
        resolver=resolver,
        fallback=OfflineConversationPlanner(catalog=catalog, resolver=resolver),
    )


def plan(*steps: dict[str, object], intent: str = "action", **extra: object) -> dict[str, object]:
    return {"intent": intent, "steps": list(steps), "rationale": "r", **extra}


async def test_valid_steps_are_normalized_and_extras_ignored(
    planner: LlmPlanner, stub: OpenAIStub
) -> None:
    stub.reply_tool_call(
        PLAN_TOOL,
        plan(
            {"operation": "logs", "target": "web", "environment": "dev", "params": {"tail": "5"}},
            {"operation": "restart", "target": "web", "environment": "dev", "risk": "low"},
            intent="read_only",
            risk_tier="low",
        ),
    )
    proposal = await planner.propose(text="logs then restart web", history=[], context=NOTHING)
    assert proposal.planner == "llm"
    assert proposal.intent == "action"  # from the catalog, not from the model's claim
    assert proposal.steps == [
        PlannedOperation(operation="logs", target="web", environment="dev", params={"tail": 5}),
        PlannedOperation(
            operation="restart", target="web", environment="dev", params={"timeout": 10}
        ),
    ]
    assert "risk" not in proposal.model_dump()


async def test_malformed_arguments_are_sent_back_once(
    planner: LlmPlanner, stub: OpenAIStub
) -> None:
    stub.reply_tool_call(PLAN_TOOL, '{"intent": "action", "steps": [')
    stub.reply_tool_call(PLAN_TOOL, plan({"operation": "health", "target": "api"}))
    proposal = await planner.propose(text="is api ok", history=[], context=NOTHING)
    assert [s.operation for s in proposal.steps] == ["health"]
    assert len(stub.requests) == 2
    feedback = stub.requests[1]["messages"][-1]
    assert feedback["role"] == "tool" and "not valid JSON" in feedback["content"]


async def test_every_tool_call_of_a_rejected_reply_gets_an_answer(
    planner: LlmPlanner, stub: OpenAIStub
) -> None:
    bad = plan({"operation": "health", "target": "api", "environment": "production"})
    stub.reply_tool_call(PLAN_TOOL, bad)
    stub.reply_tool_call(PLAN_TOOL, plan({"operation": "health", "target": "api"}))
    await planner.propose(text="is api ok", history=[], context=NOTHING)
    second = stub.requests[1]["messages"]
    assert [m["role"] for m in second[-2:]] == ["assistant", "tool"]
    assert second[-1]["tool_call_id"] == second[-2]["tool_calls"][0]["id"]
    assert "unknown environment 'production'" in second[-1]["content"]


async def test_ambiguous_target_is_a_question_not_a_retry(
    planner: LlmPlanner, stub: OpenAIStub
) -> None:
    stub.reply_tool_call(PLAN_TOOL, plan({"operation": "restart", "target": "web"}))
    proposal = await planner.propose(text="restart web", history=[], context=NOTHING)
    assert proposal.intent == "clarify" and proposal.steps == []
    assert proposal.candidates == ["dev", "prod"]
    assert len(stub.requests) == 1


async def test_the_sessions_environment_settles_an_ambiguous_name(
    planner: LlmPlanner, stub: OpenAIStub
) -> None:
    stub.reply_tool_call(PLAN_TOOL, plan({"operation": "restart", "target": "web"}))
    context = ConversationContext(last_target="web", last_environment="prod")
    proposal = await planner.propose(text="restart it", history=[], context=context)
    assert [(s.target, s.environment) for s in proposal.steps] == [("web", "prod")]


async def test_a_slow_model_times_out_and_the_offline_planner_answers(
    planner: LlmPlanner, stub: OpenAIStub
) -> None:
    slow = plan({"operation": "restart", "target": "api"})
    stub.reply_tool_call(PLAN_TOOL, slow, delay_s=2.5)
    stub.reply_tool_call(PLAN_TOOL, slow, delay_s=2.5)  # the one retry
    proposal = await planner.propose(text="show logs of api", history=[], context=NOTHING)
    assert proposal.planner == "offline"
    assert [(s.operation, s.target) for s in proposal.steps] == [("logs", "api")]
    assert any("could not be reached" in note for note in proposal.notes)


async def test_history_is_sent_as_turns(planner: LlmPlanner, stub: OpenAIStub) -> None:
    stub.reply_tool_call(PLAN_TOOL, plan(intent="question", question="It is fine."))
    history = [
        ConversationTurn(role="user", content="logs of api"),
        ConversationTurn(role="assistant", content="here they are"),
    ]
    proposal = await planner.propose(text="and now?", history=history, context=NOTHING)
    assert proposal.intent == "question" and proposal.question == "It is fine."
    roles = [m["role"] for m in stub.requests[0]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


async def test_workflow_steps_skip_the_model(planner: LlmPlanner, stub: OpenAIStub) -> None:
    request = WorkRequest(
        requester="alice",
        text="restart web on prod",
        steps=[PlannedOperation(operation="restart", target="web", environment="prod")],
    )
    planned = await planner.plan(request)
    assert [s.operation for s in planned.steps] == ["restart"]
    assert stub.requests == []


async def test_workflow_text_is_planned_by_the_model_or_refused_with_candidates(
    planner: LlmPlanner, stub: OpenAIStub
) -> None:
    stub.reply_tool_call(PLAN_TOOL, plan({"operation": "stop", "target": "api"}))
    planned = await planner.plan(WorkRequest(requester="alice", text="stop the api"))
    assert [(s.operation, s.target, s.environment) for s in planned.steps] == [
        ("stop", "api", "dev")
    ]
    stub.reply_tool_call(PLAN_TOOL, plan({"operation": "stop", "target": "nope"}))
    with pytest.raises(PlanningError) as refused:
        await planner.plan(WorkRequest(requester="alice", text="stop nope"))
    assert "api" in refused.value.candidates


async def test_offline_conversation_fills_in_it_but_never_replaces_a_name(
    resolver: TargetResolver,
) -> None:
    catalog = load_catalog(config_dir=CONFIG_DIR)
    offline = OfflineConversationPlanner(catalog=catalog, resolver=resolver)
    context = ConversationContext(last_target="api", last_environment="dev")
    again = await offline.propose(text="restart it", history=[], context=context)
    assert [(s.operation, s.target, s.environment) for s in again.steps] == [
        ("restart", "api", "dev")
    ]
    unknown = await offline.propose(text="restart payments", history=[], context=context)
    assert unknown.intent == "clarify" and unknown.steps == []
    elsewhere = await offline.propose(text="restart orders-db", history=[], context=context)
    assert [(s.target, s.environment) for s in elsewhere.steps] == [("orders-db", "prod")]
    # A protected target is refused at planning, naming the rule, never planned for approval.
    protected = await offline.propose(text="restart vault", history=[], context=context)
    assert (protected.intent, protected.rule, protected.steps) == (
        "rejected",
        "deny-protected-target",
        [],
    )


# --- looking before planning (issue 10, item 7) ------------------------------------------


@pytest.fixture
def docker() -> FakeExecutor:
    return FakeExecutor(kind="docker")


@pytest.fixture
def looking_planner(stub: OpenAIStub, resolver: TargetResolver, docker: FakeExecutor) -> LlmPlanner:
    catalog = load_catalog(config_dir=CONFIG_DIR)
    runner = OperationRunner(
        catalog=catalog,
        targets=resolver,
        policy=load_command_policy(config_dir=CONFIG_DIR),
        executors={"docker": docker, "ssh": FakeExecutor(kind="ssh")},
    )
    settings = load_settings(LLM_BASE_URL=stub.base_url, LLM_API_KEY="k", LLM_TIMEOUT_S=1)
    return LlmPlanner.from_settings(
        settings,
        catalog=catalog,
        resolver=resolver,
        fallback=OfflineConversationPlanner(catalog=catalog, resolver=resolver),
        reader=runner,
    )


def _read(operation: str, target: str = "web", environment: str = "prod") -> dict[str, str]:
    return {"operation": operation, "target": target, "environment": environment}


async def test_check_and_restart_if_needed_reads_then_proposes_with_its_reason(
    looking_planner: LlmPlanner, stub: OpenAIStub, docker: FakeExecutor
) -> None:
    docker.target("web").running = False
    stub.reply_tool_call(READ_TOOL, _read("health"))
    stub.reply_tool_call(
        PLAN_TOOL,
        plan(
            {"operation": "restart", "target": "web", "environment": "prod"},
            rationale="web is stopped, so it needs a restart",
        ),
    )
    proposal = await looking_planner.propose(
        text="check web on prod and restart it if needed", history=[], context=NOTHING
    )
    assert [(s.operation, s.target, s.environment) for s in proposal.steps] == [
        ("restart", "web", "prod")
    ]
    assert "web is stopped" in proposal.rationale
    assert "read before planning: health prod/web: failed" in proposal.rationale
    # The planner read; it changed nothing (the restart waits for the gate).
    assert [call.operation for call in docker.calls] == ["health"]
    answered = [m for m in stub.requests[1]["messages"] if m["role"] == "tool"]
    assert json.loads(answered[0]["content"])["status"] == "failed"
    plan_made = proposal.as_plan()
    assert "The model's reason: web is stopped" in plan_made.summary


async def test_a_healthy_target_read_first_gets_no_change(
    looking_planner: LlmPlanner, stub: OpenAIStub, docker: FakeExecutor
) -> None:
    stub.reply_tool_call(READ_TOOL, _read("health"))
    stub.reply_tool_call(
        PLAN_TOOL,
        plan(
            {"operation": "health", "target": "web", "environment": "prod"},
            intent="read_only",
            rationale="web is healthy; nothing to restart",
        ),
    )
    proposal = await looking_planner.propose(
        text="check web on prod and restart it if needed", history=[], context=NOTHING
    )
    assert [s.operation for s in proposal.steps] == ["health"]
    assert proposal.intent == "read_only"
    assert all(call.operation == "health" for call in docker.calls)


async def test_reads_are_bounded_and_never_change_anything(
    looking_planner: LlmPlanner, stub: OpenAIStub, docker: FakeExecutor
) -> None:
    stub.reply_tool_call(READ_TOOL, _read("restart"))  # a change dressed as a read
    for _ in range(MAX_READS + 1):
        stub.reply_tool_call(READ_TOOL, _read("logs"))
    stub.reply_tool_call(
        PLAN_TOOL,
        plan({"operation": "logs", "target": "web", "environment": "prod"}, intent="read_only"),
    )
    proposal = await looking_planner.propose(
        text="show the logs of web on prod", history=[], context=NOTHING
    )
    assert [s.operation for s in proposal.steps] == ["logs"]
    assert [call.operation for call in docker.calls] == ["logs"] * MAX_READS
    tool_answers = [
        json.loads(m["content"]) for m in stub.requests[-1]["messages"] if m["role"] == "tool"
    ]
    assert "not a read-only catalog operation" in tool_answers[0]["refused"]
    assert "no more reads" in tool_answers[-1]["refused"]
