"""The one async connection pool a process uses (checkpointer, approvals, ledger, chat)."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]


async def open_pool(
    url: str, *, max_size: int = 20, name: str = "devops-agent", timeout_s: float = 30.0
) -> Pool:
    """Open a pool whose connections suit both our queries and LangGraph's saver.

    The Postgres saver needs autocommit, dict rows and no server-side prepared statements
    (they break behind transaction poolers), so every connection is configured that way.
    `timeout_s` bounds the wait for a connection, so a database outage answers fast.
    """
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        name=name,
        timeout=timeout_s,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
        connection_class=AsyncConnection[DictRow],
    )
    await pool.open(wait=True, timeout=30)
    return pool
