"""LangGraph's Postgres checkpointer without its instance-wide lock when it runs on a pool.

`AsyncPostgresSaver` wraps every query in one `asyncio.Lock` per instance (langgraph issue
#7259), so a saver on a pool still runs one checkpoint query at a time. The lock is needed for a
single shared connection, not for a pool: each query borrows its own connection. See
docs/upstream-limits.md for the evidence; drop this module once upstream ships the fix (#7269).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg_pool import AsyncConnectionPool

from shared.lib.db.pool import Pool


class _NoLock(asyncio.Lock):
    """Stands in for the saver's lock: acquiring it never waits (each query has its own
    connection, so there is nothing to serialize)."""

    async def acquire(self) -> Literal[True]:
        return True

    def release(self) -> None:
        return None


class PooledPostgresSaver(AsyncPostgresSaver):
    """An `AsyncPostgresSaver` whose checkpoint queries run concurrently, one pool connection
    each; concurrency is bounded by the pool's `max_size`, not by a lock. A drop-in for
    `AsyncPostgresSaver(conn=pool)`."""

    def __init__(self, conn: Pool, *, serde: SerializerProtocol | None = None) -> None:
        if not isinstance(conn, AsyncConnectionPool):
            raise TypeError(
                f"PooledPostgresSaver needs an AsyncConnectionPool, not {type(conn).__name__}; "
                "for one shared connection use AsyncPostgresSaver, whose lock keeps it safe"
            )
        super().__init__(conn=conn, serde=serde)
        self.lock = _NoLock()
