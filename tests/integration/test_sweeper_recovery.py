"""What the sweeper's recovery puts right after a process died at a point the other recovery
tests do not reach (docs/durability.md): an edit whose resume never ran, an owner killed
between its final status and the release of its target, a waiter killed between writing
`waiting_for_target` and checkpointing its pause.

Each crash is made in process, at the exact point: the decision's own transaction without the
hand-off that follows it, or a `ProcessKilled` raised where the process dies. It is a
BaseException, as the process's death is to the run: no handler of the engine or the graph
catches it, so the run writes nothing more (no `failed` status, no checkpoint of the node it
interrupted); its lock is released as the dead process's session would release it. The test
then checks that the database holds the state the tester's SIGKILL left, before recovering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shared.lib.principals import Principal
from shared.lib.workflows.leases import TargetLeases
from shared.lib.workflows.locks import WorkflowLocks
from shared.lib.workflows.store import WorkflowRecord
from shared.lib.workflows.threads import run_config
from tests.integration.workflow_support import (
    APPROVER_ROLES,
    Replica,
    WorkflowWorld,
    plan_of,
    steps,
    workflow_world,
)

T = TypeVar("T")

BOB = Principal(name="bob", roles=APPROVER_ROLES)


class ProcessKilled(BaseException):
    """The process died here (SIGKILL): nothing after this point runs."""


class KilledAtRelease(TargetLeases):
    """The leases of a process killed in the report node, after the final status was written
    and before the leases were released."""

    async def finish(self, workflow_id: str, status: str) -> int:
        raise ProcessKilled(f"killed before releasing {workflow_id}'s leases")


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[WorkflowWorld]:
    async with workflow_world(database_url=database_url, data_dir=tmp_path) as built:
        yield built


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool],
    what: str,
    timeout_s: float = 20.0,
) -> T:
    """`probe` until `until` holds; fail with the last value at the deadline (never a fixed
    sleep: each poll yields to the runs the engine drives in the background)."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s}s; last: {value!r}")
        await asyncio.sleep(0.05)
        value = await probe()
    return value


async def _lease_owners(world: WorkflowWorld) -> dict[str, str]:
    async with world.database.pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT environment, target, workflow_id FROM target_leases")
        ).fetchall()
    return {f"{r['environment']}/{r['target']}": r["workflow_id"] for r in rows}


async def _events(world: WorkflowWorld, workflow_id: str, name: str) -> list[dict[str, Any]]:
    return [e.detail for e in await world.events(workflow_id) if e.event == name]


async def _thread(world: WorkflowWorld, workflow_id: str) -> tuple[tuple[str, ...], list[Any]]:
    """The thread's next nodes and pending interrupts, from its latest checkpoint."""
    snapshot = await world.graph().aget_state(
        run_config(workflow_id, request_id=None, approval_id=None)
    )
    return tuple(snapshot.next), [i.value for i in snapshot.interrupts]


async def _paused(replica: Replica, world: WorkflowWorld, *ops: tuple[str, str, str]) -> str:
    started = await replica.start(steps(*ops))
    await replica.drain()
    record = await world.workflows.get(started.id)
    assert record.status == "awaiting_approval", record
    return record.id


async def _status(world: WorkflowWorld, workflow_id: str) -> WorkflowRecord:
    return await world.workflows.get(workflow_id)


# --- 1. an edit killed before its resume ran ---------------------------------------------------


async def test_an_edit_killed_before_its_resume_ran_is_resumed_into_its_next_round(
    world: WorkflowWorld,
) -> None:
    leases = TargetLeases(world.database.pool)
    crashed, survivor = await world.engine(leases=leases), await world.engine(leases=leases)
    workflow_id = await _paused(crashed, world, ("restart", "dev", "web"))
    first = (await _status(world, workflow_id)).approval_id
    assert first is not None
    edited = plan_of(("restart", "dev", "api"))

    # POST /approve with a changed plan (ApprovalService.decide) commits the decision, settled
    # and its resume claimed, in one transaction, then hands the resume to its runner: killed
    # in between, this transaction is all that happened.
    result = await world.approvals.decide(
        approval_id=first,
        actor="bob",
        roles=APPROVER_ROLES,
        decision="edit",
        reason="it is the api that hangs",
        plan=edited,
        claim_resume=True,
    )
    assert result.gate is not None and result.gate.outcome == "edited"
    # The state the tester found: awaiting a superseded approval, nothing pending, the target
    # still leased to it.
    superseded = await world.approvals.get(first)
    assert (superseded.status, superseded.resumed_at is not None) == ("superseded", True)
    stuck = await _status(world, workflow_id)
    assert (stuck.status, stuck.approval_id) == ("awaiting_approval", first)
    assert [a.workflow_id for a in await world.approvals.list_pending()] == []
    assert (await _lease_owners(world))["dev/web"] == workflow_id

    assert await survivor.decisions.recover_decided(grace_s=0) == 1
    await survivor.drain()

    # As the edit would have: round 2 asks for the edited plan, and its approval is pending.
    asking = await _status(world, workflow_id)
    assert asking.status == "awaiting_approval" and asking.approval_id not in (None, first)
    assert asking.approval_id is not None
    second = await world.approvals.get(asking.approval_id)
    assert (second.status, second.round, second.plan_hash) == ("pending", 2, edited.hash)
    assert [a.id for a in await world.approvals.list_pending()] == [second.id]
    assert len(await _events(world, workflow_id, "plan_edited")) == 1
    assert (await _lease_owners(world))["dev/api"] == workflow_id
    assert world.calls("restart") == []
    # Recovered once: the next pass finds nothing to resume.
    assert await survivor.decisions.recover_decided(grace_s=0) == 0


# --- 2. an owner killed between its final status and its release -------------------------------


async def test_an_owner_killed_before_its_release_lets_its_waiter_and_followers_go(
    world: WorkflowWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = await world.engine(leases=KilledAtRelease(world.database.pool))
    leases = TargetLeases(world.database.pool)
    survivor = await world.engine(leases=leases)
    owner = await _paused(crashed, world, ("restart", "dev", "web"))
    follower = await survivor.start(steps(("restart", "dev", "web"), requester="carol"))
    waiter = await survivor.start(steps(("stop", "dev", "web"), requester="carol"))
    await survivor.drain()
    assert (await _status(world, follower.id)).status == "merged"
    assert (await _status(world, waiter.id)).status == "waiting_for_target"

    owner_approval = (await _status(world, owner)).approval_id
    assert owner_approval is not None
    await crashed.decisions.decide(
        principal=BOB, approval_id=owner_approval, decision="reject", reason="not now"
    )
    await crashed.drain()

    # The state the tester found: the owner ended (its report wrote `rejected`), the report
    # never got past it (the thread is still due to run it), the lease is still its own and
    # nobody was told. Its lease no longer counts for a claim, nor now for `holds`.
    assert (await _status(world, owner)).status == "rejected"
    assert (await _thread(world, owner))[0] == ("report",)
    assert (await _lease_owners(world))["dev/web"] == owner
    assert await _events(world, follower.id, "owner_finished") == []
    assert not await leases.holds(owner)

    announced: list[tuple[str, str]] = []
    status_changed = survivor.engine.status_changed

    async def heard(workflow_id: str, status: str, record: WorkflowRecord | None = None) -> None:
        announced.append((workflow_id, status))
        await status_changed(workflow_id, status, record)

    monkeypatch.setattr(survivor.engine, "status_changed", heard)
    await survivor.engine.resume_waiting()  # the sweeper's pass

    # Recovery finished what the report left: the end announced (the notification, the metrics,
    # the waiters), the followers told once, and the waiter re-assessed and asking.
    asked = await eventually(
        lambda: _status(world, waiter.id),
        until=lambda w: w.status == "awaiting_approval",
        what="the waiter re-assessed and asking",
    )
    await survivor.drain()
    assert (owner, "rejected") in announced
    told = await _events(world, follower.id, "owner_finished")
    assert told == [{"owner": owner, "status": "rejected"}]
    assert (await _lease_owners(world))["dev/web"] == waiter.id
    assert asked.approval_id is not None
    assert (await world.approvals.get(asked.approval_id)).status == "pending"

    # Nothing twice: another pass announces nothing and tells nobody again.
    announced.clear()
    await survivor.engine.resume_waiting()
    await survivor.drain()
    assert announced == []
    assert len(await _events(world, follower.id, "owner_finished")) == 1
    assert world.calls("restart") == [] and world.calls("stop") == []


# --- 3. a waiter killed before its pause was checkpointed ---------------------------------------


async def test_a_waiter_killed_before_its_pause_was_saved_is_continued_by_the_sweep(
    world: WorkflowWorld,
) -> None:
    leases = TargetLeases(world.database.pool)
    crashed, survivor = await world.engine(leases=leases), await world.engine(leases=leases)
    owner = await _paused(survivor, world, ("restart", "dev", "web"))

    announce = crashed.context.on_status

    async def killed_once_waiting(
        workflow_id: str, status: str, record: WorkflowRecord | None = None
    ) -> None:
        if status == "waiting_for_target":  # written, committed: the process dies here
            raise ProcessKilled(f"killed before {workflow_id}'s wait was checkpointed")
        await announce(workflow_id, status, record)

    crashed.context.on_status = killed_once_waiting
    waiter = await crashed.start(steps(("stop", "dev", "web"), requester="carol"))
    await crashed.drain()

    # The state the tester found: `waiting_for_target`, the thread short of its pause (its
    # claim is still to run: its writes were never checkpointed), and no run holds it.
    assert (await _status(world, waiter.id)).status == "waiting_for_target"
    assert await _thread(world, waiter.id) == (("claim_targets",), [])

    # A live run (its lock held elsewhere) is left alone.
    elsewhere = WorkflowLocks(world.database.url)
    await elsewhere.open()
    try:
        assert await elsewhere.try_acquire(waiter.id)
        await survivor.engine.resume_waiting()
        await survivor.drain()
        assert await _thread(world, waiter.id) == (("claim_targets",), [])
    finally:
        await elsewhere.close()

    # A dead one is continued from its checkpoint: it claims again and waits, paused this time.
    await survivor.engine.resume_waiting()
    await survivor.drain()
    after, interrupts = await _thread(world, waiter.id)
    assert after == ("wait",)
    assert [i["waiting_for_target"] for i in interrupts] == [owner]
    assert (await _status(world, waiter.id)).status == "waiting_for_target"

    # And moves on when the owner ends, as any waiter does.
    owner_approval = (await _status(world, owner)).approval_id
    assert owner_approval is not None
    await survivor.decisions.decide(
        principal=BOB, approval_id=owner_approval, decision="reject", reason="not now"
    )
    asked = await eventually(
        lambda: _status(world, waiter.id),
        until=lambda w: w.status == "awaiting_approval",
        what="the waiter re-assessed and asking once the owner ended",
    )
    await survivor.drain()
    assert asked.approval_id is not None
    assert (await world.approvals.get(asked.approval_id)).status == "pending"
    assert (await _lease_owners(world))["dev/web"] == waiter.id
    assert world.calls("stop") == []
