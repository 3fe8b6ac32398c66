"""Where MCP tools get their answers: in the service, the engine and stores themselves
(`local.LocalBackend`); over stdio, the service's REST API (agent_orchestrator/mcp/remote.py).

Both answer in the same shapes (the REST API's workflow views), so the tools do not care which
one they have, and the principal is always the one whose key the caller holds.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.lib.catalog.models import Catalog
from shared.lib.mcp.models import TargetSummary
from shared.lib.principals import Principal

JsonObject = dict[str, Any]


class BackendError(Exception):
    """The agent refused or failed a call; the message says what and how to go on."""


class AgentBackend(Protocol):
    """What the tools need from the agent, for one authenticated principal."""

    async def principal(self) -> Principal: ...

    async def inbox_link(self, approval_id: str) -> str:
        """Where a person decides this approval (AGENT_PUBLIC_URL/inbox/approvals/{id})."""
        ...

    async def catalog(self) -> Catalog: ...

    async def targets(self) -> list[TargetSummary]: ...

    async def start(self, order: JsonObject) -> JsonObject:
        """Start a workflow from a POST /orchestrate body; its view (id, status, risk, ...)."""
        ...

    async def workflow(self, workflow_id: str) -> JsonObject:
        """The workflow's detail (status, plan, risk, approval, results, timeline)."""
        ...

    async def my_workflows(self, limit: int) -> list[JsonObject]: ...
