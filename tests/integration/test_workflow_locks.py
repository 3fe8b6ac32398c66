"""WorkflowLocks on real Postgres: two lock holders on two connections stand for two replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.lib.workflows.locks import LOCK_SESSIONS, WorkflowLocks, lock_key

# A deadline for things that should end at once; reaching it fails the test, never passes it.
DEADLINE_S = 30.0


class CountingLocks(WorkflowLocks):
    """Counts acquisition attempts and signals the first one refused, so a test can act while
    a waiter is provably waiting."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.attempts = 0
        self.refused = asyncio.Event()

    async def try_acquire(self, workflow_id: str) -> bool:
        self.attempts += 1
        won = await super().try_acquire(workflow_id)
        if not won:
            self.refused.set()
        return won


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[tuple[CountingLocks, CountingLocks]]:
    first, second = CountingLocks(database_url), CountingLocks(database_url)
    await first.open()
    await second.open()
    yield first, second
    await first.close()
    await second.close()


async def test_one_holder_at_a_time_across_connections(
    replicas: tuple[CountingLocks, CountingLocks],
) -> None:
    first, second = replicas
    assert await first.try_acquire("wf-a") is True
    assert await second.try_acquire("wf-a") is False
    assert await first.try_acquire("wf-a") is False  # not re-entrant within a process either
    assert await second.try_acquire("wf-b") is True  # another workflow is another lock
    await first.release("wf-a")
    assert await second.try_acquire("wf-a") is True


async def test_a_waiter_gives_up_when_its_wait_runs_out(
    replicas: tuple[CountingLocks, CountingLocks],
) -> None:
    first, second = replicas
    assert await first.try_acquire("wf-a")

    async def wait_briefly() -> bool:
        async with second.holding("wf-a", wait_s=0.3) as won:
            return won

    won = await asyncio.wait_for(wait_briefly(), timeout=DEADLINE_S)
    assert won is False
    assert second.attempts > 1  # it kept trying during its wait instead of giving up at once
    assert await first.try_acquire("wf-a") is False  # the holder still holds it


async def test_a_waiter_wins_once_the_holder_lets_go_within_its_wait(
    replicas: tuple[CountingLocks, CountingLocks],
) -> None:
    first, second = replicas
    assert await first.try_acquire("wf-a")
    winners: list[str] = []

    async def wait_long() -> bool:
        async with second.holding("wf-a", wait_s=DEADLINE_S) as won:
            if won:
                winners.append("second")
            return won

    waiter = asyncio.create_task(wait_long())
    await asyncio.wait_for(second.refused.wait(), timeout=DEADLINE_S)
    await first.release("wf-a")

    assert await asyncio.wait_for(waiter, timeout=DEADLINE_S) is True
    assert winners == ["second"]
    assert await first.try_acquire("wf-a") is True  # released again when the block ended


async def test_a_release_in_this_process_wakes_its_waiter_without_a_retry(
    replicas: tuple[CountingLocks, CountingLocks], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The waiter's own retries are pushed past the deadline: only the release can wake it."""
    monkeypatch.setattr("shared.lib.workflows.locks.RETRY_INTERVAL_S", 10 * DEADLINE_S)
    first, _ = replicas
    assert await first.try_acquire("wf-a")

    async def wait_long() -> bool:
        async with first.holding("wf-a", wait_s=10 * DEADLINE_S) as won:
            return won

    waiter = asyncio.create_task(wait_long())
    await asyncio.wait_for(first.refused.wait(), timeout=DEADLINE_S)
    await first.release("wf-a")

    assert await asyncio.wait_for(waiter, timeout=DEADLINE_S) is True
    assert first.attempts == 3  # the holder's, the waiter's refused one, the waiter's win


async def test_holding_releases_on_exit_even_after_an_error(
    replicas: tuple[CountingLocks, CountingLocks],
) -> None:
    first, second = replicas
    async with first.holding("wf-a") as won:
        assert won is True
        assert await second.try_acquire("wf-a") is False
    assert await second.try_acquire("wf-a") is True
    await second.release("wf-a")

    with pytest.raises(RuntimeError, match="node blew up"):
        async with first.holding("wf-a") as won:
            assert won is True
            raise RuntimeError("node blew up")
    assert await second.try_acquire("wf-a") is True


async def test_a_lost_block_does_not_release_the_winners_lock(
    replicas: tuple[CountingLocks, CountingLocks],
) -> None:
    first, second = replicas
    assert await first.try_acquire("wf-a")
    async with second.holding("wf-a") as won:
        assert won is False
    assert await second.try_acquire("wf-a") is False  # the loser's exit unlocked nothing


async def test_closing_frees_every_lock_the_process_held(
    database_url: str, replicas: tuple[CountingLocks, CountingLocks]
) -> None:
    first, second = replicas
    assert await first.try_acquire("wf-a") and await first.try_acquire("wf-b")
    await first.close()
    # Postgres frees a session's locks when its backend exits, a moment after the client hangs
    # up (visibly so over the embedded server's Unix socket): wait for that, with a deadline.
    assert await second.acquire_within("wf-a", timeout_s=DEADLINE_S) is True
    assert await second.acquire_within("wf-b", timeout_s=DEADLINE_S) is True

    # Used again after close it reconnects, and forgets locks it no longer holds.
    assert await first.try_acquire("wf-a") is False
    await second.release("wf-a")
    assert await first.try_acquire("wf-a") is True


def test_lock_keys_are_stable_signed_64_bit_and_distinct_per_workflow() -> None:
    key = lock_key("wf-a")
    assert key == lock_key("wf-a")
    assert -(2**63) <= key < 2**63
    assert key != lock_key("wf-b")


async def test_a_busy_lock_session_does_not_hold_up_workflows_on_another(
    replicas: tuple[CountingLocks, CountingLocks],
) -> None:
    """Lock operations queue per session, not per process: with one session busy (its one
    operation at a time taken), a workflow whose lock lives on another session is served."""
    first, _ = replicas
    busy, other = _two_workflows_on_different_sessions()
    session = first._session(lock_key(busy))
    async with session.mutex:  # an operation in flight on the busy workflow's session
        assert await asyncio.wait_for(first.try_acquire(other), timeout=DEADLINE_S) is True
        queued = asyncio.create_task(first.try_acquire(busy))
        await asyncio.sleep(0)
        assert not queued.done()  # same session: it waits its turn
    assert await asyncio.wait_for(queued, timeout=DEADLINE_S) is True


def _two_workflows_on_different_sessions() -> tuple[str, str]:
    ids = [f"wf-{n}" for n in range(64)]
    first = ids[0]
    other = next(i for i in ids if lock_key(i) % LOCK_SESSIONS != lock_key(first) % LOCK_SESSIONS)
    return first, other
