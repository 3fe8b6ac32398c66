"""Long polls' wake-ups: a workflow's change wakes everyone waiting for it and nobody else, and
a wait that ends, woken or not, leaves nothing behind."""

from __future__ import annotations

import asyncio

from shared.lib.workflows.changes import StatusChanges

DEADLINE_S = 5.0


async def test_a_change_wakes_every_waiter_of_that_workflow_only() -> None:
    changes = StatusChanges()
    with (
        changes.watching("wf-a") as first,
        changes.watching("wf-a") as second,
        changes.watching("wf-b") as other,
    ):
        changes.changed("wf-a")
        await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), DEADLINE_S)
        assert not other.is_set()
        assert len(changes) == 1  # wf-b is still watched


async def test_a_wait_that_ends_leaves_nothing_behind() -> None:
    changes = StatusChanges()
    with changes.watching("wf-a"):
        with changes.watching("wf-a"):
            assert len(changes) == 1
        assert len(changes) == 1  # the outer wait still watches
    assert len(changes) == 0  # a finished workflow's last long poll is forgotten

    with changes.watching("wf-a") as woken:
        changes.changed("wf-a")
        with changes.watching("wf-a") as next_wait:  # a waiter that read again after the wake
            assert woken.is_set() and not next_wait.is_set()
    assert len(changes) == 0
    changes.changed("wf-a")  # nobody waits: nothing to wake, nothing kept
    assert len(changes) == 0
