"""Per-workflow locks so one process at a time drives a thread (LangGraph does not lock).

All locks of a process are session-level advisory locks held on a few dedicated connections
(a workflow's lock always on the same one): if the process dies, Postgres closes the sessions
and every lock they held is released, so a recovering replica can pick the workflow up without
leases or timeouts. Several sessions rather than one: each takes one lock operation at a time,
and under load one session queued every run's start and end behind the others (10 ms of
waiting per acquisition at 16 workflows in flight, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection

RETRY_INTERVAL_S = 0.05
LOCK_SESSIONS = 4


def lock_key(workflow_id: str) -> int:
    """A stable signed 64-bit key for the workflow id."""
    digest = hashlib.blake2b(f"workflow:{workflow_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _LockSession:
    """One dedicated connection and the workflow locks it holds; one operation at a time."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: AsyncConnection[tuple[object, ...]] | None = None
        self.mutex = asyncio.Lock()
        self.held: set[str] = set()

    async def open(self) -> None:
        self._conn = await AsyncConnection.connect(self._url, autocommit=True)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        self.held.clear()  # the session ended, and every lock with it

    async def connection(self) -> AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            # A lost session lost its locks too; forget them rather than pretend to hold them.
            self.held.clear()
            await self.open()
        assert self._conn is not None
        return self._conn


class WorkflowLocks:
    def __init__(self, url: str, *, sessions: int = LOCK_SESSIONS) -> None:
        self._sessions = tuple(_LockSession(url) for _ in range(sessions))
        self._freed: dict[str, asyncio.Event] = {}  # set when this process releases the lock

    async def open(self) -> None:
        for session in self._sessions:
            await session.open()

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()

    async def try_acquire(self, workflow_id: str) -> bool:
        key = lock_key(workflow_id)
        session = self._session(key)
        async with session.mutex:
            conn = await session.connection()  # first: a lost session forgets what it held
            if workflow_id in session.held:
                return False  # session locks are re-entrant in Postgres; ours must not be
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))).fetchone()
            acquired = bool(row and row[0])
            if acquired:
                session.held.add(workflow_id)
            return acquired

    async def release(self, workflow_id: str) -> None:
        key = lock_key(workflow_id)
        session = self._session(key)
        async with session.mutex:
            if workflow_id not in session.held:
                return
            session.held.discard(workflow_id)
            conn = await session.connection()
            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            freed = self._freed.pop(workflow_id, None)
        if freed is not None:
            freed.set()

    def _session(self, key: int) -> _LockSession:
        return self._sessions[key % len(self._sessions)]

    async def acquire_within(self, workflow_id: str, *, timeout_s: float) -> bool:
        """Try until `timeout_s` passes: a run that is just reaching its pause holds the lock
        for a few milliseconds more, and a resume should wait that out, not give up. A release
        in this process wakes the waiter at once; one elsewhere is seen by trying again every
        `RETRY_INTERVAL_S`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not await self.try_acquire(workflow_id):
            remaining = deadline - loop.time()
            if remaining <= 0:
                self._freed.pop(workflow_id, None)
                return False
            freed = self._freed.setdefault(workflow_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(freed.wait(), timeout=min(remaining, RETRY_INTERVAL_S))
        return True

    @asynccontextmanager
    async def holding(self, workflow_id: str, *, wait_s: float = 0.0) -> AsyncIterator[bool]:
        """Yield whether the lock was won (waiting up to `wait_s`); release it if so."""
        acquired = await self.acquire_within(workflow_id, timeout_s=wait_s)
        try:
            yield acquired
        finally:
            if acquired:
                await self.release(workflow_id)
