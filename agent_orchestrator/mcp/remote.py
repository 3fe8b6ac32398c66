"""The tools' view of the agent from outside it: the service's REST API through `AgentClient`,
so `devops-agent mcp` (stdio) never opens the database; the service stays its only owner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from agent_orchestrator.client import AgentClient, ApiError
from shared.lib.catalog.models import Catalog
from shared.lib.mcp.backend import BackendError, JsonObject
from shared.lib.mcp.models import TargetSummary
from shared.lib.principals import Principal

T = TypeVar("T")


class RemoteBackend:
    """One API key's view of the service; the caller and the catalog are read once."""

    def __init__(self, client: AgentClient) -> None:
        self._client = client
        self._caller: JsonObject | None = None
        self._catalog: Catalog | None = None

    async def principal(self) -> Principal:
        caller = await self._me()
        return Principal(name=caller["name"], roles=frozenset(caller["roles"]))

    async def inbox_link(self, approval_id: str) -> str:
        return f"{(await self._me())['inbox_url']}{approval_id}"

    async def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog.model_validate(await self._call(self._client.catalog))
        return self._catalog

    async def targets(self) -> list[TargetSummary]:
        return [TargetSummary.model_validate(t) for t in await self._call(self._client.targets)]

    async def start(self, order: JsonObject) -> JsonObject:
        return await self._call(self._client.start_workflow, order)

    async def workflow(self, workflow_id: str) -> JsonObject:
        return await self._call(self._client.workflow, workflow_id)

    async def my_workflows(self, limit: int) -> list[JsonObject]:
        return await self._call(lambda: self._client.my_workflows(limit=limit))

    async def _me(self) -> JsonObject:
        if self._caller is None:
            self._caller = await self._call(self._client.me)
        return self._caller

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        # The client is synchronous (it serves the CLI); a thread keeps the MCP loop free.
        try:
            return await anyio.to_thread.run_sync(method, *args)
        except ApiError as error:
            raise BackendError(str(error)) from None
