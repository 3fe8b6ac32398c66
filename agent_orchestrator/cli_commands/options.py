"""Options every API command shares, and the one place API failures become exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from agent_orchestrator.cli_commands.output import fail
from agent_orchestrator.client import DEFAULT_URL, AgentClient, ApiError, ClientConfigError

EXIT_REFUSED = 1
EXIT_USAGE = 2

Url = Annotated[
    str,
    typer.Option("--url", envvar="AGENT_URL", help="Base URL of the service.", show_envvar=True),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="AGENT_API_KEY",
        help="Your API key (sent as 'Authorization: Bearer').",
        show_envvar=True,
        show_default=False,
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print the service's JSON reply instead of tables.")
]


@contextmanager
def connect(url: str, api_key: str | None) -> Iterator[AgentClient]:
    """A client for one command: bad settings exit 2, a refused or failed call exits 1."""
    try:
        client = AgentClient(base_url=url, api_key=api_key)
    except ClientConfigError as error:
        fail(str(error), code=EXIT_USAGE)
    try:
        with client:
            yield client
    except ApiError as error:
        fail(str(error), code=EXIT_REFUSED)


__all__ = ["DEFAULT_URL", "EXIT_REFUSED", "EXIT_USAGE", "ApiKey", "AsJson", "Url", "connect"]
