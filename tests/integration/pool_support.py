"""A small pool on a test's empty database, with the table the test writes to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.lib.db.pool import Pool, open_pool


@asynccontextmanager
async def pool_with_table(database_url: str, create_table: str) -> AsyncIterator[Pool]:
    """The service's pool setup (`open_pool`, two connections) after `create_table` ran."""
    pool = await open_pool(database_url, max_size=2)
    try:
        async with pool.connection() as conn:
            await conn.execute(create_table)
        yield pool
    finally:
        await pool.close()
