"""The compiled workflow graph on a Postgres checkpointer, driven directly (no engine, no HTTP)
with a context of real stores: which nodes a request passes, where it pauses, what it records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from shared.lib.approvals.decisions import gate_decision
from shared.lib.approvals.models import ApprovalRecord
from shared.lib.workflows.engine import Graph
from tests.integration.workflow_support import WorkflowWorld, plan_of, steps, workflow_world


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[WorkflowWorld]:
    async with workflow_world(database_url=database_url, data_dir=tmp_path) as built:
        yield built


def _thread(state: WorkflowState) -> RunnableConfig:
    return {"configurable": {"thread_id": state["workflow_id"]}}


async def _run(
    graph: Graph, run_input: Any, state: WorkflowState, context: WorkflowContext
) -> dict[str, Any]:
    result: dict[str, Any] = await graph.ainvoke(
        run_input, _thread(state), context=context, durability="sync"
    )
    return result


async def _resume_with(
    world: WorkflowWorld, graph: Graph, approval: ApprovalRecord, state: WorkflowState
) -> dict[str, Any]:
    decision = gate_decision(await world.approvals.get(approval.id))
    assert decision is not None, approval
    return await _run(
        graph, Command(resume=decision.model_dump(mode="json")), state, world.context()
    )


async def test_a_low_risk_request_runs_through_to_the_report(world: WorkflowWorld) -> None:
    graph, start = world.graph(), await world.new_workflow(steps(("health", "dev", "web")))
    final = await _run(graph, start, start, world.context())

    assert "__interrupt__" not in final
    assert (final["status"], final["auto_approved"]) == ("completed", True)
    assert final.get("approval_id") is None
    assert [r["status"] for r in final["results"]] == ["ok"]
    assert (await graph.aget_state(_thread(start))).next == ()
    record = await world.workflows.get(start["workflow_id"])
    assert (record.status, record.approval_id, record.finished_at is not None) == (
        "completed",
        None,
        True,
    )
    assert [e.event for e in await world.events(start["workflow_id"])] == [
        "received", "planned", "assessed", "executing", "step_finished", "verified", "completed",
    ]  # fmt: skip
    assert await world.approvals.for_workflow(start["workflow_id"]) == []
    assert world.calls("health") == ["web"]


async def test_a_request_that_cannot_be_planned_goes_straight_to_the_report(
    world: WorkflowWorld,
) -> None:
    graph = world.graph()
    start = await world.new_workflow(steps(("reboot_everything", "dev", "web")))
    final = await _run(graph, start, start, world.context())

    # An operation the catalog lacks is a question back, not an error while running.
    assert final["status"] == "needs_clarification"
    assert "reboot_everything" in final["error"]
    assert final["planning_outcome"]["status"] == "needs_clarification"
    assert "assessment" not in final
    events = [e.event for e in await world.events(start["workflow_id"])]
    assert events == ["received", "needs_clarification", "needs_clarification"]
    assert world.docker.calls == []


async def test_a_gated_request_pauses_at_the_gate_with_its_approval_id(
    world: WorkflowWorld,
) -> None:
    graph, start = world.graph(), await world.new_workflow(steps(("restart", "dev", "web")))
    paused = await _run(graph, start, start, world.context())

    [approval] = await world.approvals.for_workflow(start["workflow_id"])
    [pending] = paused["__interrupt__"]
    assert (pending.value["approval_id"], pending.value["workflow_id"]) == (
        str(approval.id),
        start["workflow_id"],
    )
    assert pending.value["action_request"]["action"] == "approve_plan"  # the Agent Inbox's shape
    snapshot = await graph.aget_state(_thread(start))
    assert snapshot.next == ("gate",)
    assert [i.value["approval_id"] for i in snapshot.interrupts] == [str(approval.id)]
    assert (approval.status, approval.risk_level, approval.round) == ("pending", "medium", 1)
    record = await world.workflows.get(start["workflow_id"])
    # The graph alone never says `awaiting_approval`: the engine does, once the pause is in
    # the checkpoint (WorkflowEngine.on_pause).
    assert (record.status, record.approval_id) == ("planning", approval.id)
    assert world.calls("restart") == []  # only the evidence probe ran before the pause
    assert world.calls("health") == ["web"]

    # Approved, the same thread runs on from the gate: execute, verify, report.
    await world.decide(approval.id, "approve")
    final = await _resume_with(world, graph, approval, start)
    assert final["status"] == "completed"
    assert final["decision"]["outcome"] == "approved"
    assert [c["passed"] for c in final["verification"]] == [True]
    assert world.calls("restart") == ["web"]
    assert (await world.workflows.get(start["workflow_id"])).status == "completed"


async def test_a_rejection_ends_at_the_report_without_running_anything(
    world: WorkflowWorld,
) -> None:
    graph, start = world.graph(), await world.new_workflow(steps(("restart", "dev", "web")))
    await _run(graph, start, start, world.context())
    [approval] = await world.approvals.for_workflow(start["workflow_id"])

    await world.decide(approval.id, "reject", reason="change freeze until Monday")
    final = await _resume_with(world, graph, approval, start)

    assert (final["status"], final["error"]) == ("rejected", "change freeze until Monday")
    assert "results" not in final or final["results"] == []
    assert world.calls("restart") == []
    record = await world.workflows.get(start["workflow_id"])
    assert (record.status, record.error) == ("rejected", "change freeze until Monday")


async def test_an_edit_is_assessed_again_and_asks_for_a_new_approval(
    world: WorkflowWorld,
) -> None:
    graph, start = world.graph(), await world.new_workflow(steps(("restart", "dev", "web")))
    await _run(graph, start, start, world.context())
    [first] = await world.approvals.for_workflow(start["workflow_id"])
    edited = plan_of(("restart", "prod", "web"))

    await world.decide(first.id, "edit", reason="it is prod that is down", plan=edited)
    paused = await _resume_with(world, graph, first, start)

    approvals = {a.round: a for a in await world.approvals.for_workflow(start["workflow_id"])}
    second = approvals[2]
    assert second.id != first.id
    assert (approvals[1].status, second.status) == ("superseded", "pending")
    # Re-assessed on the edited plan: prod is high risk where dev was medium.
    assert (first.risk_level, second.risk_level) == ("medium", "high")
    assert second.plan_hash == edited.hash
    assert second.context["plan_authors"] == ["bob"]
    [pending] = paused["__interrupt__"]
    assert pending.value["approval_id"] == str(second.id)
    assert paused["round"] == 2
    assert (await graph.aget_state(_thread(start))).next == ("gate",)
    record = await world.workflows.get(start["workflow_id"])
    assert (record.status, record.approval_id) == ("planning", second.id)
    assert [(s["environment"], s["target"]) for s in record.plan or []] == [("prod", "web")]
    timeline = await world.events(start["workflow_id"])
    assessed = [e.detail["tier"] for e in timeline if e.event == "assessed"]
    assert assessed == ["medium", "high"]
    assert "plan_edited" in [e.event for e in timeline]
    assert world.calls("restart") == []
