"""How many new workflows plan at once in a process; decisions never wait behind them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.lib.metrics import PLANNING_QUEUE

log = logging.getLogger(__name__)


class PlanningSlots:
    """At most `limit` new workflows plan at once (None: no limit). A resume after a decision,
    recovery and a continued run take no slot, so under a burst of new requests (an alert
    storm) a decision still acts at once. A slot is given back as soon as its workflow leaves
    planning (paused at its gate, running, waiting for a target or ended), not when its run
    ends; waiters get slots in the order they asked. A workflow waits at most `patience_s`:
    past that it plans without a slot, so planners that hang never stall the ones behind."""

    def __init__(self, limit: int | None, *, patience_s: float = 15.0) -> None:
        self._free = asyncio.Semaphore(limit) if limit else None
        self._patience_s = patience_s
        self._held: set[str] = set()
        self._waiting: set[str] = set()

    def knows(self, workflow_id: str) -> bool:
        """Whether the workflow waits for a slot here or plans in one (recovery leaves it be)."""
        return workflow_id in self._waiting or workflow_id in self._held

    @asynccontextmanager
    async def planning(self, workflow_id: str) -> AsyncIterator[None]:
        if self._free is None or not await self._wait_for_slot(workflow_id):
            yield
            return
        self._held.add(workflow_id)
        try:
            yield
        finally:
            self.left_planning(workflow_id)

    def left_planning(self, workflow_id: str) -> None:
        if workflow_id in self._held and self._free is not None:
            self._held.discard(workflow_id)
            self._free.release()

    async def _wait_for_slot(self, workflow_id: str) -> bool:
        assert self._free is not None
        self._waiting.add(workflow_id)
        try:
            with PLANNING_QUEUE.track_inprogress():
                async with asyncio.timeout(self._patience_s):
                    await self._free.acquire()  # a cancelled acquire hands its slot back
            return True
        except TimeoutError:
            log.warning(
                "no planning slot within %.0f s; planning without one",
                self._patience_s,
                extra={"workflow_id": workflow_id},
            )
            return False
        finally:
            self._waiting.discard(workflow_id)
