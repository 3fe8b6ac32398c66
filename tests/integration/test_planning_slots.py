"""With its planning slots taken by new workflows still planning, a replica resumes a decided
workflow at once; the new workflow past the limit waits its turn, unplanned, and plans once a
slot frees. Real engine, stores and checkpointer; the planner is held by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shared.lib.planning.models import Plan
from shared.lib.principals import Principal
from shared.lib.workflows.models import WorkRequest
from tests.helpers import wait_for
from tests.integration.workflow_support import (
    APPROVER_ROLES,
    WorkflowWorld,
    steps,
    workflow_world,
)

DEADLINE_S = 30.0


class HeldPlanner:
    """Plans as the configured planner does, for requests whose first step targets `held`
    only once the test lets go."""

    def __init__(self, planner: object, held: str) -> None:
        self._planner, self._held = planner, held
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def plan(self, request: WorkRequest) -> Plan:
        if request.steps and request.steps[0].target == self._held:
            self.holding.set()
            await self.release.wait()
        return await self._planner.plan(request)  # type: ignore[attr-defined]


async def _waiting_to_plan(count: int) -> None:
    await asyncio.to_thread(
        wait_for,
        lambda: REGISTRY.get_sample_value("orchestrator_workflows_waiting_to_plan"),
        until=lambda waiting: waiting == count,
        timeout_s=DEADLINE_S,
        what=f"{count} workflow(s) waiting for a planning slot",
    )


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[WorkflowWorld]:
    async with workflow_world(database_url=database_url, data_dir=tmp_path) as built:
        yield built


async def test_a_decision_resumes_while_new_workflows_wait_for_a_planning_slot(
    world: WorkflowWorld,
) -> None:
    planner = HeldPlanner(world.context().planner, held="api")
    replica = await world.engine(planning_slots=1, planner=planner)
    paused = await replica.start(steps(("restart", "dev", "web")))
    assert paused.status == "awaiting_approval" and paused.approval_id is not None

    holder = asyncio.create_task(replica.start(steps(("restart", "dev", "api"))))
    await asyncio.wait_for(planner.holding.wait(), DEADLINE_S)  # the one slot is taken
    queued = asyncio.create_task(replica.start(steps(("restart", "dev", "web"), requester="carol")))
    await _waiting_to_plan(1)
    decision = await replica.decisions.decide(
        principal=Principal(name="bob", roles=APPROVER_ROLES),
        approval_id=paused.approval_id,
        decision="approve",
    )
    assert decision.resumed
    finished = await replica.engine.settle(
        paused.id, timeout_s=DEADLINE_S, answered=paused.approval_id
    )
    assert finished.status == "completed"
    assert world.calls("restart") == ["web"]

    waiting = await world.workflows.in_status(["planning"])
    timelines = [[event.event for event in await world.events(w)] for w in waiting]
    assert timelines == [["received"], ["received"]]  # the held one and the one behind it
    assert not holder.done() and not queued.done()

    planner.release.set()
    first, second = await asyncio.wait_for(asyncio.gather(holder, queued), DEADLINE_S)
    assert (first.status, second.status) == ("awaiting_approval", "awaiting_approval")
    await replica.drain()
