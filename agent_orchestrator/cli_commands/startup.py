"""What `serve` checks once, in the parent process, before it listens or forks workers, and how
`serve --workers N` reports workers that could not start: a bad setting ends in one line that
names the setting or file and the fix, with an exit code a restart policy sees."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer
from uvicorn.config import STARTUP_FAILURE

from shared.lib.db.migrations import MigrationError
from shared.lib.db.pool import DatabaseConnectionError

if TYPE_CHECKING:
    from shared.lib.settings import Settings

EXIT_CONFIG = 2
# What `serve` exits with when the service (one worker, or any of several) failed to start:
# uvicorn's own code for it, so one worker and many look the same to a supervisor.
EXIT_STARTUP_FAILED = STARTUP_FAILURE
STARTUP_ERRORS = (DatabaseConnectionError, MigrationError)


def explain(error: Exception, settings: Settings) -> str:
    """The one line for a start-up error: the variable or file, what is wrong, the fix."""
    if isinstance(error, DatabaseConnectionError):
        if error.url == settings.database_url:
            return error.describe("DATABASE_URL")
        if error.url == settings.migration_database_url:
            return error.describe("MIGRATION_DATABASE_URL")
        return error.describe(f"the embedded Postgres in {settings.data_dir}")
    return str(error)


def exit_on_startup_error(error: Exception, settings: Settings) -> typer.Exit:
    """Print `explain(error)` on stderr; the Exit (code 2) to raise."""
    typer.echo(explain(error, settings), err=True)
    return typer.Exit(code=EXIT_CONFIG)


def preflight(settings: Settings) -> None:
    """Check the migrations folder and, for a DATABASE_URL, the connection and the applied
    migrations' checksums, once, read-only: raises one of STARTUP_ERRORS. Each worker then
    applies what is pending itself, under the migration lock. The embedded Postgres starts
    with the service, so only its migration files are checked here."""
    asyncio.run(_preflight(settings))


async def _preflight(settings: Settings) -> None:
    from psycopg import AsyncConnection
    from psycopg.rows import dict_row

    from shared.lib.db.database import migrations_dir
    from shared.lib.db.migrations import load_migrations, pending_migrations
    from shared.lib.db.pool import check_connection

    migrations = load_migrations(migrations_dir(settings))
    if settings.migration_database_url:
        await check_connection(settings.migration_database_url)
    if settings.database_url is None:
        return
    await check_connection(settings.database_url)
    async with await AsyncConnection.connect(
        settings.database_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await pending_migrations(conn, migrations)  # an edited applied migration raises


def run_workers(settings: Settings, http: type) -> int:
    """Serve with `settings.workers` processes under uvicorn's supervisor; the exit code:
    EXIT_STARTUP_FAILED when a worker failed to start (uvicorn then stops them all but, unlike
    with one worker, would exit 0), else 0."""
    from uvicorn import Config
    from uvicorn.supervisors import Multiprocess

    config = Config(
        "agent_orchestrator.app:create_app_from_env",  # each worker builds its own app
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=http,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    failed = [p.pid for p in supervisor.processes if p.exitcode == STARTUP_FAILURE]
    if failed:
        typer.echo(
            f"serve: worker process {failed[0]} failed to start (its error is logged above); "
            f"every worker stopped, exit {EXIT_STARTUP_FAILED}",
            err=True,
        )
        return EXIT_STARTUP_FAILED
    return 0
