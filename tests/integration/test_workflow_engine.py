"""WorkflowEngine on real Postgres with in-memory executors: what start answers, which resumes
run, and what recovery picks up; several engines on one database stand for replicas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.lib.errors import ConflictError, NotFoundError
from shared.lib.principals import Principal
from shared.lib.workflows.store import WorkflowRecord
from tests.integration.workflow_support import (
    APPROVER_ROLES,
    Replica,
    WorkflowWorld,
    plan_of,
    steps,
    workflow_world,
)


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[WorkflowWorld]:
    async with workflow_world(database_url=database_url, data_dir=tmp_path) as built:
        yield built


async def _paused(world: WorkflowWorld, engine: Replica) -> WorkflowRecord:
    """A restart of dev/web, started and paused at its gate."""
    started = await engine.start(steps(("restart", "dev", "web")))
    await engine.drain()
    record = await world.workflows.get(started.id)
    assert (record.status, record.approval_id is not None) == ("awaiting_approval", True), record
    return record


async def test_start_answers_with_the_recorded_workflow_and_its_status(
    world: WorkflowWorld,
) -> None:
    engine = await world.engine()
    started = await engine.start(steps(("health", "dev", "web")))
    assert started.id.startswith("wf-")
    assert started.status in {"running", "completed"}  # answered once it left planning
    assert started.requester == "alice"
    await engine.drain()
    assert (await world.workflows.get(started.id)).status == "completed"


async def test_start_of_a_gated_request_answers_awaiting_approval(world: WorkflowWorld) -> None:
    engine = await world.engine()
    started = await engine.start(steps(("restart", "dev", "web")))
    assert started.status == "awaiting_approval"
    assert started.approval_id is not None
    [approval] = await world.approvals.for_workflow(started.id)
    assert approval.id == started.approval_id


async def test_an_undecided_approval_resumes_nothing(world: WorkflowWorld) -> None:
    engine = await world.engine()
    paused = await _paused(world, engine)
    assert paused.approval_id is not None
    assert await engine.decisions.resume_decided(paused.approval_id) is False
    with pytest.raises(ConflictError, match=f"awaits approval '{paused.approval_id}'"):
        await engine.decisions.resume_workflow(paused.id)
    await engine.drain()
    assert (await world.workflows.get(paused.id)).status == "awaiting_approval"
    assert world.calls("restart") == []


async def test_two_replicas_resuming_one_decision_run_it_once(world: WorkflowWorld) -> None:
    first, second = await world.engine(), await world.engine()
    paused = await _paused(world, first)
    assert paused.approval_id is not None
    await world.decide(paused.approval_id, "approve")

    claims = await asyncio.gather(
        first.decisions.resume_decided(paused.approval_id),
        second.decisions.resume_decided(paused.approval_id),
    )
    await asyncio.gather(first.drain(), second.drain())

    assert sorted(claims) == [False, True]
    assert (await world.workflows.get(paused.id)).status == "completed"
    assert world.calls("restart") == ["web"]
    assert (await world.approvals.get(paused.approval_id)).resumed_at is not None


async def test_a_stale_decision_does_not_answer_the_newer_pause(world: WorkflowWorld) -> None:
    """After an edit the thread waits on round 2; resuming round 1 again must change nothing."""
    engine = await world.engine()
    paused = await _paused(world, engine)
    assert paused.approval_id is not None
    first = paused.approval_id
    await world.decide(
        first, "edit", reason="prod is down", plan=plan_of(("restart", "prod", "web"))
    )
    assert await engine.decisions.resume_decided(first) is True
    await engine.drain()
    waiting = await world.workflows.get(paused.id)
    assert waiting.approval_id is not None and waiting.approval_id != first

    assert (
        await engine.decisions.resume_decided(first, force=True) is True
    )  # claimed, but answers nothing
    await engine.drain()

    after = await world.workflows.get(paused.id)
    assert (after.status, after.approval_id) == ("awaiting_approval", waiting.approval_id)
    assert (await world.approvals.get(waiting.approval_id)).status == "pending"
    assert world.calls("restart") == []


async def test_resume_of_a_finished_workflow_says_it_is_already_done(
    world: WorkflowWorld,
) -> None:
    engine = await world.engine()
    started = await engine.start(steps(("health", "dev", "web")))
    await engine.drain()
    calls_before = len(world.docker.calls)

    assert await engine.decisions.resume_workflow(started.id) == "already completed"
    await engine.drain()
    assert len(world.docker.calls) == calls_before

    paused = await _paused(world, engine)
    assert paused.approval_id is not None
    await world.decide(paused.approval_id, "reject", reason="not during the sale")
    assert await engine.decisions.resume_decided(paused.approval_id) is True
    await engine.drain()
    assert await engine.decisions.resume_workflow(paused.id) == "already rejected"


async def test_recovery_resumes_a_decision_nobody_resumed(world: WorkflowWorld) -> None:
    crashed, survivor = await world.engine(), await world.engine()
    paused = await _paused(world, crashed)
    assert paused.approval_id is not None
    # Decided, but the process that recorded the decision died before resuming.
    await world.decide(paused.approval_id, "approve")
    assert await world.approvals.decided_not_resumed(older_than_s=0) == [paused.approval_id]

    assert await survivor.decisions.recover_decided(grace_s=0) == 1
    await survivor.drain()

    assert (await world.workflows.get(paused.id)).status == "completed"
    assert world.calls("restart") == ["web"]
    assert await world.approvals.decided_not_resumed(older_than_s=0) == []
    assert await survivor.decisions.recover_decided(grace_s=0) == 0


async def test_a_decision_records_the_pause_whichever_replica_paused_the_workflow(
    world: WorkflowWorld,
) -> None:
    """The replica that paused a workflow knows its approval's workflow and reads nothing to
    find it; another reads it. Either way the decision records the checkpoint of the pause,
    and an approval nobody made is a 404."""
    first, second = await world.engine(), await world.engine()
    bob = Principal(name="bob", roles=APPROVER_ROLES)
    for deciding in (first, second):
        paused = await _paused(world, first)
        assert paused.approval_id is not None
        pause = await first.engine.pause_point(paused.id)
        await deciding.decisions.decide(
            principal=bob, approval_id=paused.approval_id, decision="approve"
        )
        [approval] = await world.approvals.for_workflow(paused.id)
        [vote] = [a for a in approval.actions if a.action == "approve"]
        assert vote.details["shown"] == {"channel": "api", "hash": None, **pause}
        assert pause["checkpoint_id"] is not None
        await first.drain()
        await second.drain()
    with pytest.raises(NotFoundError):
        await first.decisions.decide(principal=bob, approval_id=uuid.uuid4(), decision="approve")
