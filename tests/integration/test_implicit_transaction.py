"""`implicit_transaction`: the block's statements commit together when it ends, without BEGIN or
COMMIT statements; an exception or a failing statement leaves nothing behind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from shared.lib.db.pool import Pool, implicit_transaction, open_pool


@pytest.fixture
async def pool(empty_database_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(empty_database_url, max_size=2)
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE notes (n int PRIMARY KEY)")
    yield pool
    await pool.close()


def _seen_elsewhere(url: str) -> list[int]:
    with psycopg.connect(url) as other:
        return [row[0] for row in other.execute("SELECT n FROM notes ORDER BY n").fetchall()]


async def test_the_statements_commit_together_when_the_block_ends(
    pool: Pool, empty_database_url: str
) -> None:
    async with implicit_transaction(pool) as conn:
        first = await (await conn.execute("INSERT INTO notes VALUES (1) RETURNING n")).fetchone()
        await conn.execute("INSERT INTO notes VALUES (2)")  # sent with the block's end
        seen = await (await conn.execute("SELECT count(*) AS n FROM notes")).fetchone()
        assert _seen_elsewhere(empty_database_url) == []  # not committed yet
    assert first == {"n": 1} and seen == {"n": 2}
    assert _seen_elsewhere(empty_database_url) == [1, 2]


async def test_an_exception_in_the_block_rolls_its_writes_back(
    pool: Pool, empty_database_url: str
) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with implicit_transaction(pool) as conn:
            await (await conn.execute("INSERT INTO notes VALUES (1) RETURNING n")).fetchone()
            raise RuntimeError("changed my mind")
    assert _seen_elsewhere(empty_database_url) == []


async def test_a_failing_statement_rolls_the_block_back(
    pool: Pool, empty_database_url: str
) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with implicit_transaction(pool) as conn:
            await conn.execute("INSERT INTO notes VALUES (1)")
            await (await conn.execute("INSERT INTO notes VALUES (1) RETURNING n")).fetchone()
    assert _seen_elsewhere(empty_database_url) == []
    async with implicit_transaction(pool) as conn:  # the pooled connection is usable again
        await (await conn.execute("INSERT INTO notes VALUES (3) RETURNING n")).fetchone()
    assert _seen_elsewhere(empty_database_url) == [3]
