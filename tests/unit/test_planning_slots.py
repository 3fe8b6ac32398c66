"""Planning slots: at most N new workflows plan at once, a slot comes back as soon as its
workflow leaves planning, and waiters are served in the order they asked."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from shared.lib.workflows.admission import PlanningSlots

DEADLINE_S = 5.0


class Planners:
    """Workflows planning through `slots`: each says when it got its slot and holds its run
    open until `finish` is set."""

    def __init__(self, slots: PlanningSlots) -> None:
        self.slots = slots
        self.order: list[str] = []
        self.entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.finish = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, *names: str) -> None:
        self.tasks += [asyncio.create_task(self._plan(name)) for name in names]

    async def _plan(self, name: str) -> None:
        async with self.slots.planning(name):
            self.order.append(name)
            self.entered[name].set()
            await self.finish.wait()

    async def entered_by(self, name: str) -> None:
        await asyncio.wait_for(self.entered[name].wait(), DEADLINE_S)

    async def settle(self) -> None:
        for _ in range(10):  # every waiter that can run now has run
            await asyncio.sleep(0)

    async def end(self) -> None:
        self.finish.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), DEADLINE_S)


async def test_a_workflow_past_the_limit_waits_until_one_leaves_planning() -> None:
    planners = Planners(PlanningSlots(1))
    planners.start("a", "b")
    await planners.entered_by("a")
    await planners.settle()
    assert planners.order == ["a"]  # b waits for the slot
    assert planners.slots.knows("a") and planners.slots.knows("b")  # recovery leaves both be
    planners.slots.left_planning("a")  # paused at its gate: its run goes on, its slot is free
    await planners.entered_by("b")
    await planners.end()
    assert planners.order == ["a", "b"]
    assert not planners.slots.knows("a") and not planners.slots.knows("b")


async def test_waiters_get_slots_in_the_order_they_asked() -> None:
    planners = Planners(PlanningSlots(1))
    planners.start("a", "b", "c", "d")
    for name in "abc":
        await planners.entered_by(name)
        planners.slots.left_planning(name)
    await planners.entered_by("d")
    await planners.end()
    assert planners.order == ["a", "b", "c", "d"]


async def test_a_slot_is_given_back_once_even_when_its_run_ends_after_leaving() -> None:
    planners = Planners(PlanningSlots(2))
    planners.start("a")
    await planners.entered_by("a")
    planners.slots.left_planning("a")
    planners.finish.set()
    await asyncio.wait_for(planners.tasks.pop(), DEADLINE_S)  # the block's end frees nothing more
    planners.finish.clear()
    planners.start("b", "c", "d")
    await planners.entered_by("c")
    await planners.settle()
    assert planners.order == ["a", "b", "c"]  # two slots, not three
    await planners.end()


async def test_without_a_limit_nobody_waits() -> None:
    planners = Planners(PlanningSlots(None))
    names = [str(i) for i in range(50)]
    planners.start(*names)
    for name in names:
        await planners.entered_by(name)
    await planners.end()


async def test_a_workflow_waits_no_longer_than_its_patience() -> None:
    planners = Planners(PlanningSlots(1, patience_s=0.05))
    planners.start("stuck", "next")
    await planners.entered_by("stuck")
    await planners.entered_by("next")  # past its patience: plans without a slot
    assert not planners.slots.knows("next")  # holds none, so it frees none
    planners.slots.left_planning("stuck")
    planners.start("third")
    await planners.entered_by("third")  # the one slot, handed back once
    await planners.end()
