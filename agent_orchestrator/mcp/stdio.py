"""`devops-agent mcp`: the MCP server over stdio for a local host (an editor, a coding agent),
reaching the service through its REST API with the caller's API key."""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from agent_orchestrator import __version__
from agent_orchestrator.client import AgentClient
from agent_orchestrator.mcp.remote import RemoteBackend
from shared.lib.mcp.server import build_server


async def serve_stdio(client: AgentClient) -> None:
    """Check the key first (a bad key stops here, before the host sees a server), then serve
    MCP on stdin/stdout until the host closes them."""
    backend = RemoteBackend(client)
    await backend.principal()
    server = build_server(backend_for=lambda ctx: backend, version=__version__)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
