"""Open the process's database: pick the server, open the pool, bring the schema up to date."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from shared.lib.db.embedded import EmbeddedPostgres, start_embedded_postgres
from shared.lib.db.migrations import (
    Migration,
    apply_migrations,
    load_migrations,
    pending_migrations,
    wait_for_advisory_lock,
)
from shared.lib.db.pool import Pool, open_pool
from shared.lib.settings import Settings

log = logging.getLogger(__name__)

# Serializes LangGraph's own schema set-up across replicas starting at once.
CHECKPOINT_SETUP_LOCK_ID = 7_240_002


@dataclass
class Database:
    url: str
    pool: Pool
    migrations: list[Migration]
    embedded: EmbeddedPostgres | None = None

    async def close(self) -> None:
        await self.pool.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


def migrations_dir(settings: Settings) -> Path:
    return settings.config_dir / "state"


async def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when set; otherwise the embedded server in the per-user data directory."""
    if settings.database_url:
        return settings.database_url, None
    embedded = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
    return embedded.url, embedded


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    url, embedded = await resolve_database_url(settings)
    try:
        pool = await open_pool(
            url, max_size=settings.db_pool_max, timeout_s=settings.db_pool_timeout_s
        )
    except Exception:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    database = Database(url, pool, load_migrations(migrations_dir(settings)), embedded)
    if migrate:
        await migrate_database(database)
    return database


async def migrate_database(database: Database) -> list[Migration]:
    """Apply our migrations, then LangGraph's checkpoint tables; safe to run on every start."""
    async with database.pool.connection() as conn:
        applied = await apply_migrations(conn, database.migrations)
    for migration in applied:
        log.info("migration applied", extra={"migration": f"{migration.version:04d}"})
    async with database.pool.connection() as lock_conn:
        await wait_for_advisory_lock(lock_conn, CHECKPOINT_SETUP_LOCK_ID)
        try:
            await AsyncPostgresSaver(conn=database.pool).setup()
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock(%s)", (CHECKPOINT_SETUP_LOCK_ID,))
    return applied


async def schema_is_current(database: Database, *, timeout_s: float | None = None) -> bool:
    async with database.pool.connection(timeout=timeout_s) as conn:
        return not await pending_migrations(conn, database.migrations)
