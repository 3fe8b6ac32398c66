"""Ordered, numbered SQL migrations from config/state, applied once each, never edited."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg import AsyncConnection, errors
from psycopg.rows import DictRow

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every replica of the service.
MIGRATION_LOCK_ID = 7_240_001

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """A migration folder or history that cannot be applied safely."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    """Read `NNNN_name.sql` files in order; refuse a missing or empty folder, gaps, duplicates,
    stray and unreadable files (a service without its schema would only answer 500s)."""
    if not directory.is_dir():
        raise MigrationError(
            f"{directory}: the migrations folder is missing; AGENT_CONFIG_DIR must hold state/ "
            "with this release's numbered SQL files: copy config/state/ of the release into it, "
            "or mount only the config files you change (docs/deploy.md)"
        )
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path}: migration files are named NNNN_lower_snake.sql; rename it or move it "
                "out of the folder"
            )
        migrations.append(Migration(int(match[1]), match[2], _read(path)))
    if not migrations:
        raise MigrationError(
            f"{directory}: no migrations (NNNN_name.sql) in the folder; copy config/state/ of "
            "this release into it"
        )
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{directory}: expected migration {expected:04d}, found {migration.version:04d}"
                f"_{migration.name}.sql; versions must run 0001, 0002, ... without gaps"
            )
    return migrations


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise MigrationError(
            f"{path}: not UTF-8 (byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8"
        ) from None
    except OSError as error:
        raise MigrationError(f"{path}: cannot read it ({error.strerror})") from None


async def table_exists(conn: AsyncConnection[DictRow], name: str) -> bool:
    row = await (
        await conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (name,))
    ).fetchone()
    return bool(row and row["present"])


async def applied_versions(conn: AsyncConnection[DictRow]) -> dict[int, str]:
    """Applied versions and checksums; read-only, so a role without DDL rights can check."""
    if not await table_exists(conn, "schema_migrations"):
        return {}
    rows = await (await conn.execute("SELECT version, checksum FROM schema_migrations")).fetchall()
    return {row["version"]: row["checksum"] for row in rows}


async def pending_migrations(
    conn: AsyncConnection[DictRow], migrations: list[Migration]
) -> list[Migration]:
    """Migrations not yet applied; an applied one whose file changed is an error."""
    applied = await applied_versions(conn)
    for migration in migrations:
        checksum = applied.get(migration.version)
        if checksum is not None and checksum != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name}.sql was edited after it "
                "was applied; restore it and add a new numbered migration instead"
            )
    return [m for m in migrations if m.version not in applied]


async def wait_for_advisory_lock(
    conn: AsyncConnection[DictRow], lock_id: int, *, timeout_s: float = 300.0
) -> None:
    """Poll for a session lock instead of blocking in pg_advisory_lock.

    A blocked pg_advisory_lock is an open statement, and LangGraph's set-up runs
    CREATE INDEX CONCURRENTLY, which waits for every older open statement: a replica waiting
    for the lock held by the replica building the index would deadlock it, unseen by Postgres.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        row = await (
            await conn.execute("SELECT pg_try_advisory_lock(%s) AS won", (lock_id,))
        ).fetchone()
        if row and row["won"]:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise MigrationError(
                f"another process held schema lock {lock_id} for over {timeout_s:.0f}s; "
                "check for a stuck migration in pg_stat_activity"
            )
        await asyncio.sleep(0.1)


async def apply_migrations(
    conn: AsyncConnection[DictRow], migrations: list[Migration]
) -> list[Migration]:
    """Apply what is pending, each in its own transaction, under a cluster-wide lock.

    Nothing pending runs no DDL at all, so the agent's DML-only role starts on a schema its
    owner brought up to date (docs/deploy.md, "Database roles").
    """
    await wait_for_advisory_lock(conn, MIGRATION_LOCK_ID)
    try:
        pending = await pending_migrations(conn, migrations)
        if pending:
            await _as_owner(conn, pending[0], VERSION_TABLE)
        for migration in pending:
            try:
                async with conn.transaction():
                    await _as_owner(conn, migration, migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except errors.Error as error:  # its transaction rolled back: nothing of it stays
                reason = (str(error).splitlines() or [type(error).__name__])[0]
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}.sql failed and was "
                    f"not applied: {reason}; correct it (safe, as it was never applied) and "
                    "start again"
                ) from None
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))


async def _as_owner(conn: AsyncConnection[DictRow], migration: Migration, sql: str) -> None:
    """Run migration DDL; a role without the right gets told which role should run it."""
    try:
        await conn.execute(sql.encode(), prepare=False)  # many statements: never preparable
    except errors.InsufficientPrivilege as error:
        raise MigrationError(
            f"role {conn.info.user!r} may not apply migration {migration.version:04d}_"
            f"{migration.name}.sql ({error}); run `devops-agent db init` with "
            "MIGRATION_DATABASE_URL naming the schema owner's role (docs/deploy.md)"
        ) from None
