"""How many new workflows plan at once in a process; decisions never wait behind them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.lib.metrics import PLANNING_QUEUE


class PlanningSlots:
    """At most `limit` new workflows plan at once (None: no limit). A resume after a decision,
    recovery and a continued run take no slot, so under a burst of new requests (an alert
    storm) a decision still acts at once. A slot is given back as soon as its workflow leaves
    planning (paused at its gate, running, waiting for a target or ended), not when its run
    ends; waiters get slots in the order they asked."""

    def __init__(self, limit: int | None) -> None:
        self._free = asyncio.Semaphore(limit) if limit else None
        self._held: set[str] = set()
        self._waiting: set[str] = set()

    def knows(self, workflow_id: str) -> bool:
        """Whether the workflow waits for a slot here or plans in one (recovery leaves it be)."""
        return workflow_id in self._waiting or workflow_id in self._held

    @asynccontextmanager
    async def planning(self, workflow_id: str) -> AsyncIterator[None]:
        if self._free is None:
            yield
            return
        self._waiting.add(workflow_id)
        try:
            with PLANNING_QUEUE.track_inprogress():
                await self._free.acquire()
        finally:
            self._waiting.discard(workflow_id)
        self._held.add(workflow_id)
        try:
            yield
        finally:
            self.left_planning(workflow_id)

    def left_planning(self, workflow_id: str) -> None:
        if workflow_id in self._held and self._free is not None:
            self._held.discard(workflow_id)
            self._free.release()
