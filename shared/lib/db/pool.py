"""The one async connection pool a process uses (checkpointer, approvals, ledger, chat)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection, pq
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
PREPARE_AFTER = 5  # psycopg's default prepare_threshold


async def open_pool(
    url: str,
    *,
    max_size: int = 20,
    name: str = "devops-agent",
    timeout_s: float = 30.0,
    prepare: bool = True,
) -> Pool:
    """Open a pool whose connections suit both our queries and LangGraph's saver.

    The Postgres saver needs autocommit and dict rows, so every connection is configured that
    way. With `prepare` (DB_PREPARED_STATEMENTS) a query is prepared on a connection after
    psycopg's default of `PREPARE_AFTER` runs there: Postgres then skips parsing and planning
    it (a third of its CPU per workflow, docs/benchmarks.md). Queries name their columns
    (`columns.py`): a prepared `SELECT *` would fail once another session's migration adds one.
    Transaction poolers may not carry prepared statements (docs/upstream-limits.md).
    `timeout_s` bounds the wait for a connection, so a database outage answers fast.
    """
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        name=name,
        timeout=timeout_s,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": PREPARE_AFTER if prepare else None,
            "row_factory": dict_row,
        },
        connection_class=AsyncConnection[DictRow],
    )
    await pool.open(wait=True, timeout=30)
    return pool


@asynccontextmanager
async def implicit_transaction(pool: Pool) -> AsyncIterator[AsyncConnection[DictRow]]:
    """A pooled connection whose statements form one transaction with no BEGIN or COMMIT
    statement: in pipeline mode they run in Postgres's implicit transaction, which only the
    Sync sent as the block ends commits: two statements fewer than `conn.transaction()`, and
    one round trip fewer outside a pipeline (BEGIN's).

    Fetching a result sends a flush, not a Sync, so each statement runs in order, with its own
    snapshot, after the locks the ones before it took, as in an explicit transaction; a
    statement whose result is not fetched is sent with the next fetch or the Sync, and its
    error, if any, is raised there. An exception in the block rolls everything back (a
    ROLLBACK ahead of the Sync), and a process killed inside it leaves nothing: the server
    never sees the Sync. Not for blocks that read `rowcount` without fetching or nest
    `transaction()`."""
    async with pool.connection() as conn, conn.pipeline():
        try:
            yield conn
        except BaseException:
            if conn.pgconn.pipeline_status != pq.PipelineStatus.ABORTED:  # else the Sync ends it
                await conn.execute("ROLLBACK")
            raise
