"""Open the process's database: pick the server, open the pool, bring the schema up to date."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection, errors
from psycopg.rows import DictRow

from shared.lib.db.embedded import EmbeddedPostgres, start_embedded_postgres
from shared.lib.db.migrations import (
    Migration,
    MigrationError,
    apply_migrations,
    load_migrations,
    pending_migrations,
    table_exists,
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
            url,
            max_size=settings.db_pool_max,
            timeout_s=settings.db_pool_timeout_s,
            prepare=settings.db_prepared_statements,
        )
    except Exception:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    database = Database(url, pool, load_migrations(migrations_dir(settings)), embedded)
    if migrate:
        try:
            await migrate_database(database, owner_url=settings.migration_database_url)
        except Exception:
            await database.close()
            raise
    return database


async def migrate_database(database: Database, *, owner_url: str | None = None) -> list[Migration]:
    """Apply our migrations, then LangGraph's checkpoint tables; safe to run on every start.

    With `owner_url` (MIGRATION_DATABASE_URL) the DDL runs as that role on a short-lived pool of
    its own, and the service's pool keeps its DML-only role; a current schema needs no DDL.
    """
    if owner_url is None:
        return await _migrate(database.pool, database.migrations)
    owner_pool = await open_pool(owner_url, max_size=2, name="devops-agent-migrate", prepare=False)
    try:
        return await _migrate(owner_pool, database.migrations)
    finally:
        await owner_pool.close()


async def _migrate(pool: Pool, migrations: list[Migration]) -> list[Migration]:
    async with pool.connection() as conn:
        applied = await apply_migrations(conn, migrations)
    for migration in applied:
        log.info("migration applied", extra={"migration": f"{migration.version:04d}"})
    async with pool.connection() as lock_conn:
        await wait_for_advisory_lock(lock_conn, CHECKPOINT_SETUP_LOCK_ID)
        try:
            if not await checkpoint_schema_is_current(lock_conn):
                await _checkpoint_setup(pool, lock_conn.info.user)
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock(%s)", (CHECKPOINT_SETUP_LOCK_ID,))
    return applied


async def checkpoint_schema_is_current(conn: AsyncConnection[DictRow]) -> bool:
    """Whether LangGraph's checkpoint migrations are all applied (read-only: its own set-up
    starts with a CREATE TABLE IF NOT EXISTS, which a DML-only role may not run)."""
    if not await table_exists(conn, "checkpoint_migrations"):
        return False
    row = await (await conn.execute("SELECT max(v) AS v FROM checkpoint_migrations")).fetchone()
    latest = row["v"] if row else None
    return latest is not None and latest >= len(AsyncPostgresSaver.MIGRATIONS) - 1


async def _checkpoint_setup(pool: Pool, user: str) -> None:
    try:
        await AsyncPostgresSaver(conn=pool).setup()
    except errors.InsufficientPrivilege as error:
        raise MigrationError(
            f"role {user!r} may not create LangGraph's checkpoint tables ({error}); run "
            "`devops-agent db init` with MIGRATION_DATABASE_URL naming the schema owner's role"
        ) from None


async def schema_is_current(database: Database, *, timeout_s: float | None = None) -> bool:
    async with database.pool.connection(timeout=timeout_s) as conn:
        if await pending_migrations(conn, database.migrations):
            return False
        return await checkpoint_schema_is_current(conn)
