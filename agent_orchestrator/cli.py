"""`devops-agent`: run the service, prepare the database, and drive workflows and approvals
over the REST API (exit codes: 0 ok, 1 the service refused or failed, 2 usage or config)."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import typer

from agent_orchestrator import __version__
from agent_orchestrator.cli_commands import approvals, options, workflows
from agent_orchestrator.cli_commands.options import DEFAULT_URL, ApiKey, AsJson, Url
from agent_orchestrator.cli_commands.status import show_status

if TYPE_CHECKING:
    from shared.lib.settings import Settings

app = typer.Typer(help="The DevOps agent with durable human approval gates.", no_args_is_help=True)
db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(approvals.app, name="approvals")
app.add_typer(workflows.app, name="workflows")


def _settings() -> Settings:
    # Imported here: the API commands should not pay for pydantic-settings at start-up.
    from shared.lib.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(code=2) from None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command("status")
def status(as_json: AsJson = False, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """What the service can reach: database, hosts, model, receivers, sweepers (GET /status).

    Exits 0 when every component is up or unconfigured, 1 when one is down."""
    if not show_status(as_json=as_json, url=url, api_key=api_key):
        raise typer.Exit(code=1)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to listen on (env AGENT_HOST)."),
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Port to listen on (env AGENT_PORT)."
    ),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes, each a replica (env AGENT_WORKERS)."
    ),
) -> None:
    """Run the HTTP service (embedded Postgres when DATABASE_URL is unset); flags override env.

    Exits 2 on a bad setting, config file, migration or database URL (one line naming it), 3
    when the service (any of its workers) fails to start otherwise."""
    import os

    import uvicorn

    from agent_orchestrator.app import create_app
    from agent_orchestrator.cli_commands import startup
    from agent_orchestrator.system.transport import NoDelayH11Protocol
    from shared.lib.config_errors import ConfigError
    from shared.lib.logs import configure_logging

    flags = {"AGENT_HOST": host, "AGENT_PORT": port, "AGENT_WORKERS": workers}
    for variable, value in flags.items():
        if value is not None:  # workers re-read settings from the environment: set it there
            os.environ[variable] = str(value)
    settings = _settings()
    configure_logging(settings.log_level)
    if settings.workers > 1 and settings.database_url is None:
        typer.echo(
            "AGENT_WORKERS: several workers need a shared server in DATABASE_URL, not the "
            "embedded Postgres; set DATABASE_URL or use --workers 1",
            err=True,
        )
        raise typer.Exit(code=2)
    try:  # once, here: not in every worker, each ending in a traceback
        startup.preflight(settings)
    except startup.STARTUP_ERRORS as error:
        raise startup.exit_on_startup_error(error, settings) from None
    try:
        service = create_app(settings)
    except ConfigError as error:  # a bad config file: say where and how to fix it, no traceback
        typer.echo(str(error), err=True)
        raise typer.Exit(code=2) from None
    if settings.workers > 1:
        raise typer.Exit(code=startup.run_workers(settings, NoDelayH11Protocol))
    uvicorn.run(
        service,
        host=settings.host,
        port=settings.port,
        http=NoDelayH11Protocol,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


@app.command()
def mcp(url: options.Url = options.DEFAULT_URL, api_key: options.ApiKey = None) -> None:
    """Serve MCP over stdio for a local host, as the principal whose key you give; the service
    (--url) does the work and owns the database. A bad key exits 1 before serving."""
    from agent_orchestrator.mcp.stdio import serve_stdio
    from shared.lib.mcp.backend import BackendError

    with options.connect(url, api_key) as client:
        try:
            asyncio.run(serve_stdio(client))
        except BackendError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=options.EXIT_REFUSED) from None


@db_app.command("init")
def db_init() -> None:
    """Apply pending migrations and LangGraph's checkpoint tables; safe to repeat.

    Runs as MIGRATION_DATABASE_URL's role (the schema owner) when set, else DATABASE_URL's.
    Exits 2, with one line, when a URL cannot connect or a migration is refused or fails."""
    from agent_orchestrator.cli_commands import startup
    from shared.lib.db.database import migrate_database, open_database

    settings = _settings()

    async def run() -> list[str]:
        database = await open_database(settings, migrate=False)
        try:
            applied = await migrate_database(database, owner_url=settings.migration_database_url)
        finally:
            await database.close()
        return [f"{m.version:04d}_{m.name}" for m in applied]

    try:
        applied = asyncio.run(run())
    except startup.STARTUP_ERRORS as error:  # one line naming the URL or migration file
        raise startup.exit_on_startup_error(error, settings) from None
    typer.echo("applied: " + ", ".join(applied) if applied else "database is up to date")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
