"""The pool prepares a query once it ran a few times on a connection, unless told not to
(DB_PREPARED_STATEMENTS=false, for transaction poolers); migrations never prepare."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.db.database import open_database
from shared.lib.db.pool import PREPARE_AFTER
from shared.lib.settings import Settings, load_settings
from tests.conftest import CONFIG_DIR

QUERY = "SELECT count(*) AS n FROM workflows WHERE status = %s"


async def _prepared_after_runs(settings: Settings) -> int:
    """Run one query more often than the threshold on one connection; how many statements
    that session then holds prepared."""
    database = await open_database(settings)
    try:
        async with database.pool.connection() as conn:
            for _ in range(PREPARE_AFTER + 2):
                await conn.execute(QUERY, ("planning",))
            row = await (
                await conn.execute(
                    "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE %s",
                    ("%FROM workflows WHERE status%",),
                )
            ).fetchone()
    finally:
        await database.close()
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize(("flag", "expected"), [("true", 1), ("false", 0)])
async def test_a_repeated_query_is_prepared_only_when_allowed(
    database_url: str, tmp_path: Path, flag: str, expected: int
) -> None:
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        DB_PREPARED_STATEMENTS=flag,
    )
    assert await _prepared_after_runs(settings) == expected
