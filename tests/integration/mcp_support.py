"""The MCP tests' test bed: a real service process on its own database, driving a real
container, and the SDK's own clients over streamable HTTP and stdio."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import httpx2
import mcp_types as types
import pytest
from docker.models.containers import Container
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.helpers import KEYS, wait_for
from tests.testbed.docker_fixtures import RUN_LABEL
from tests.testbed.postgres import PostgresServer
from tests.testbed.service import ServiceProcess

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv" / "bin" / "devops-agent"
PUBLIC_URL = "https://agent.example.test"
MARKER = f"mcp-log-{secrets.token_hex(4)}"
# Logs a marker at every start, and leaves at once on SIGTERM so a restart is quick.
WEB_COMMAND = ["sh", "-c", f"trap 'exit 0' TERM INT; echo {MARKER}; sleep 3600 & wait $!"]


@dataclass
class McpBed:
    base_url: str
    database_url: str
    web: Container

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    def started_at(self) -> str:
        self.web.reload()
        return str(self.web.attrs["State"]["StartedAt"])

    def rest(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {KEYS[who]}"}
        return httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def stdio_parameters(self, who: str) -> StdioServerParameters:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
        env |= {"AGENT_URL": self.base_url, "AGENT_API_KEY": KEYS[who]}
        return StdioServerParameters(command=str(CLI), args=["mcp"], env=env)


@pytest.fixture(scope="module")
def mcp_bed(
    postgres_server: PostgresServer,
    docker_client: docker.DockerClient,
    docker_url: str,
    test_image: str,
    docker_run_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[McpBed]:
    web = docker_client.containers.run(
        test_image,
        WEB_COMMAND,
        name=f"{docker_run_prefix}mcp-web",
        labels={RUN_LABEL: docker_run_prefix},
        detach=True,
    )
    database_url = postgres_server.create_database("mcp")
    workdir = tmp_path_factory.mktemp("mcp")
    service = ServiceProcess(
        env={
            "DATABASE_URL": database_url,
            "AGENT_CONFIG_DIR": str(REPO / "config"),
            "AGENT_ENVIRONMENTS_FILE": str(REPO / "tests" / "fixtures" / "environments.yml"),
            "AGENT_DATA_DIR": str(workdir),
            "AGENT_PUBLIC_URL": PUBLIC_URL,
            "TEST_PROD_WEB_CONTAINER": str(web.name),
            "TEST_DOCKER_URL": docker_url,
        },
        log_path=workdir / "service.log",
    )
    try:
        wait_for(lambda: _logs(web), until=lambda text: MARKER in text, what="web logs marker")
        service.start()
        yield McpBed(service.base_url, database_url, web)
    finally:
        service.stop()
        web.remove(force=True)
        postgres_server.drop_database(database_url)


def _logs(container: Container) -> str:
    return bytes(container.logs()).decode(errors="replace")


@asynccontextmanager
async def http_session(
    bed: McpBed, who: str, *, key: str | None = None, statuses: list[int] | None = None
) -> AsyncIterator[ClientSession]:
    """A session as `who` (or with `key`); `statuses` collects every HTTP status answered."""
    headers = {"Authorization": f"Bearer {key if key is not None else KEYS[who]}"}

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(60.0), event_hooks={"response": [record]}
        ) as http,
        streamable_http_client(bed.mcp_url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def stdio_session(bed: McpBed, who: str) -> AsyncIterator[ClientSession]:
    async with (
        stdio_client(bed.stdio_parameters(who)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def payload(result: types.CallToolResult) -> dict[str, Any]:
    """The tool's structured answer, which must equal its text content."""
    structured: dict[str, Any] = result.structured_content
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    assert json.loads(first.text) == json.loads(json.dumps(structured, default=str))
    return structured
